package migrate

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// Status is how a mailbox's migration ended.
type Status string

// The statuses of a MailboxReport.
const (
	StatusCompleted           Status = "completed"             // every message copied or deliberately left out
	StatusCompletedWithErrors Status = "completed with errors" // some messages or folders failed; the rest is copied
	StatusFailed              Status = "failed"                // the mailbox stopped (MailboxReport.Err says why)
)

// Report is the outcome of a batch.
type Report struct {
	Started   time.Time        `json:"started"`
	Finished  time.Time        `json:"finished"`
	Mailboxes []*MailboxReport `json:"mailboxes"`
}

// MailboxReport is the outcome of one mailbox.
type MailboxReport struct {
	Mailbox string `json:"mailbox"`
	Status  Status `json:"status"`
	// Err is why the mailbox failed (StatusFailed), as a value that
	// errors.Is and errors.As can examine; Error is its text, which is
	// what survives JSON.
	Err      error           `json:"-"`
	Error    string          `json:"error,omitempty"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Folders  []*FolderReport `json:"folders"`
	// Problems lists every message that was not copied, or whose changed
	// flags were not carried, with the reason.
	Problems []Problem `json:"problems,omitempty"`
	// Reconnects is how many times the source reopened a dropped connection.
	Reconnects int `json:"reconnects"`
	// Throttled is how many times the sink was told to slow down.
	Throttled int `json:"throttled"`
	// Notices are the facts the backends reported about the run
	// (EventNotice), each once, in the order they came: what the target
	// keeps of the messages, for example.
	Notices []string `json:"notices,omitempty"`
}

// FolderReport is the outcome of one source folder.
type FolderReport struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// Skipped is true when the folder was left out by the FolderMapper.
	Skipped bool `json:"skipped,omitempty"`
	// Listed is the number of messages the source listed: in a pass
	// over changes only, those that changed.
	Listed int `json:"listed"`
	// Copied is the number copied in this run, Bytes their size.
	Copied int   `json:"copied"`
	Bytes  int64 `json:"bytes"`
	// AlreadyCopied were copied by an earlier run (listed or, in a pass
	// over changes only or an unchanged folder, recorded in the State).
	AlreadyCopied int `json:"alreadyCopied"`
	// Repaired were copied by an earlier run that stopped before committing
	// them, found on the sink and committed now.
	Repaired int `json:"repaired"`
	// FoundOnTarget were already on the sink, stamped with their
	// SourceID, when the State recorded nothing for their folder (a rerun
	// whose State was lost or deleted): adopted and recorded, not copied
	// again (see WatermarkLister).
	FoundOnTarget int `json:"foundOnTarget"`
	// Filtered were left out by the Filter, Duplicates by the Deduper.
	Filtered   int `json:"filtered"`
	Duplicates int `json:"duplicates"`
	// Degraded were stored, but not as they are on the source: the sink
	// could not take them as they were and stored what it could read, with
	// the original attached (see the mailbox's Problems for each reason).
	// They are not counted in Copied.
	Degraded int `json:"degraded"`
	// Failed could not be copied, or were found on the target from an
	// earlier run but could not be stamped there (see the mailbox's
	// Problems); the next run tries them again.
	Failed int `json:"failed"`
	// FlagsFailed are items whose changed flags could not be carried (see
	// the mailbox's Problems); the next pass tries them again.
	FlagsFailed int `json:"flagsFailed"`
	// Vanished were listed but gone from the source when fetched.
	Vanished int `json:"vanished"`
	// FlagsUpdated is the number of sink items whose flags a delta pass changed.
	FlagsUpdated int `json:"flagsUpdated"`
	// Pass is how the folder was read: "first" (a first pass: its UIDs
	// listed, each message's metadata read with its body), "full" (every
	// message's metadata listed),
	// "changes" (only what changed since the last complete pass, see
	// ChangeLister) or "unchanged" (its mod-sequence had not moved).
	Pass string `json:"pass,omitempty"`
	// Err is why the folder failed, as a value; Error is its text.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// The actions a Problem reports on.
const (
	ActionCopy     = "copy"      // the message was not copied
	ActionSetFlags = "set flags" // the copied item's changed flags were not carried
	ActionDegrade  = "degrade"   // the message was stored degraded, with its original attached
	ActionStamp    = "stamp"     // an earlier copy was found but could not be stamped with its watermark (see WatermarkStamper)
)

// Problem is a message that was not copied, was stored degraded, or whose
// changed flags were not carried.
type Problem struct {
	Folder    string `json:"folder"`
	UID       uint32 `json:"uid"`
	MessageID string `json:"messageId,omitempty"`
	Size      int64  `json:"size"`
	// Action is what went wrong: ActionCopy, ActionDegrade,
	// ActionSetFlags or ActionStamp.
	Action string `json:"action"`
	// Err is the backend's error, as a value that errors.Is and errors.As
	// can examine (for example against ErrItem); Reason is its text, which
	// is what survives JSON.
	Err    error  `json:"-"`
	Reason string `json:"reason"`
}

// Totals sums the folder reports of every mailbox.
func (r *Report) Totals() FolderReport {
	var t FolderReport
	for _, m := range r.Mailboxes {
		mt := m.Totals()
		add(&t, &mt)
	}
	return t
}

// Totals sums the mailbox's folder reports.
func (m *MailboxReport) Totals() FolderReport {
	var t FolderReport
	for _, f := range m.Folders {
		add(&t, f)
	}
	return t
}

func add(t, f *FolderReport) {
	t.Listed += f.Listed
	t.Copied += f.Copied
	t.Bytes += f.Bytes
	t.AlreadyCopied += f.AlreadyCopied
	t.Repaired += f.Repaired
	t.FoundOnTarget += f.FoundOnTarget
	t.Filtered += f.Filtered
	t.Duplicates += f.Duplicates
	t.Degraded += f.Degraded
	t.Failed += f.Failed
	t.FlagsFailed += f.FlagsFailed
	t.Vanished += f.Vanished
	t.FlagsUpdated += f.FlagsUpdated
}

// Lost reports whether any message that should have been copied was not:
// a failed message or folder, or a failed mailbox.
func (r *Report) Lost() bool {
	for _, m := range r.Mailboxes {
		if m.Status != StatusCompleted {
			return true
		}
	}
	return false
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteCSV writes one row per folder of each mailbox, with a header row.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"Mailbox", "Status", "SourceFolder", "TargetFolder", "Listed", "Copied", "Bytes",
		"AlreadyCopied", "Repaired", "FoundOnTarget", "Filtered", "Duplicates", "Degraded", "Failed", "Vanished", "FlagsUpdated", "FlagsFailed", "Error"})
	itoa := strconv.Itoa
	for _, m := range r.Mailboxes {
		for _, f := range m.Folders {
			cw.Write([]string{m.Mailbox, string(m.Status), f.Source, f.Target, itoa(f.Listed), itoa(f.Copied),
				strconv.FormatInt(f.Bytes, 10), itoa(f.AlreadyCopied), itoa(f.Repaired), itoa(f.FoundOnTarget), itoa(f.Filtered),
				itoa(f.Duplicates), itoa(f.Degraded), itoa(f.Failed), itoa(f.Vanished), itoa(f.FlagsUpdated), itoa(f.FlagsFailed), f.Error})
		}
		if len(m.Folders) == 0 {
			cw.Write([]string{m.Mailbox, string(m.Status), "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", m.Error})
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteText writes a summary for people: per mailbox, the folders with what
// was copied, then every problem with its reason.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range r.Mailboxes {
		t := m.Totals()
		fmt.Fprintf(tw, "Mailbox %s: %s — %d copied (%s), %d degraded, %d already there, %d failed, in %s\n",
			m.Mailbox, m.Status, t.Copied, FormatBytes(t.Bytes), t.Degraded, t.AlreadyCopied+t.Repaired+t.FoundOnTarget, t.Failed,
			m.Finished.Sub(m.Started).Round(time.Millisecond))
		if m.Error != "" {
			fmt.Fprintf(tw, "  error: %s\n", m.Error)
		}
		for _, n := range m.Notices {
			fmt.Fprintf(tw, "  note: %s\n", n)
		}
		if t.FoundOnTarget > 0 {
			fmt.Fprintf(tw, "  found on the target: %d messages the state did not record, adopted rather than copied again\n", t.FoundOnTarget)
		}
		fmt.Fprintf(tw, "  source folder\ttarget folder\tlisted\tcopied\tbytes\tdegraded\tskipped\tfailed\t\n")
		for _, f := range m.Folders {
			target := f.Target
			if f.Skipped {
				target = "(not migrated)"
			}
			skipped := f.AlreadyCopied + f.Repaired + f.FoundOnTarget + f.Filtered + f.Duplicates + f.Vanished
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\n", f.Source, target, f.Listed, f.Copied,
				FormatBytes(f.Bytes), f.Degraded, skipped, f.Failed+f.FlagsFailed, f.Error)
		}
		for _, p := range m.Problems {
			what := map[string]string{ActionSetFlags: "flags not carried", ActionDegrade: "degraded", ActionStamp: "not stamped"}[p.Action]
			if what == "" {
				what = "not copied"
			}
			fmt.Fprintf(tw, "  %s: %s UID %d %s (%s): %s\n", what, p.Folder, p.UID, p.MessageID, FormatBytes(p.Size), p.Reason)
		}
	}
	return tw.Flush()
}

// FormatBytes renders n as "12.3 MB" (powers of 1024, short names): below
// 1024 in bytes ("1023 B"), else with one decimal in the largest unit that
// shows at least 1.0, so that the number shown is always below 1024 (a
// byte short of 1 MB is "1.0 MB", not "1024.0 KB").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KB", "MB", "GB", "TB", "PB", "EB"}
	oneDecimal := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	v, exp := float64(n)/unit, 0
	// A value just below 1024 rounds to "1024.0": it too takes the next unit.
	for exp < len(units)-1 && (v >= unit || oneDecimal(v) == "1024.0") {
		v /= unit
		exp++
	}
	return oneDecimal(v) + " " + units[exp]
}
