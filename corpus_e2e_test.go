package mailferry_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gomessage "github.com/emersion/go-message"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
)

// This file migrates a corpus of real-world and malformed mail
// (testdata/corpus, see its MANIFEST.txt) from a real Dovecot into the
// Graph emulator and checks every message against what the migration
// promises. It is written for the target behaviour of the sink: lenient
// parsing with degraded items (the original attached), IMAP $-keywords as
// categories and the forwarded verb, and a default that keeps received
// dates. Until those land, some of its checks fail; the test says which
// file fails and why, and logs a table of the paths the corpus took.

const (
	corpusDir = "testdata/corpus"
	// corpusSeed fixes the folders, flags, keywords and INTERNALDATEs drawn
	// for the corpus, so that every run (and every mode) sees the same.
	corpusSeed = 20240229
	// bigFile names the generated 40 MB message in reports.
	bigFile = "generated:big-attachment-40mb.eml"
	// bigAttachment is the size of its attachment, before base64.
	bigAttachment = 40 << 20
)

// corpusFolders are the folders the corpus is spread over, as paths below
// the personal namespace, with the folder each lands in on Exchange
// (migrate.DefaultMapper: INBOX is the well-known Inbox, the others keep
// their names; "Archiv" and "Envoyés" would take the Archive and Sent
// roles by name, but Dovecot's own Archive and Sent claim those roles
// with SPECIAL-USE).
var corpusFolders = []struct {
	path   []string
	target string
}{
	{[]string{"INBOX"}, "Inbox"},
	{[]string{"Archiv", "2019", "Geschäftlich"}, "Archiv/2019/Geschäftlich"},
	{[]string{"Envoyés"}, "Envoyés"},
	{[]string{"Projects", "Q1"}, "Projects/Q1"},
}

// corpusKeywords are the keywords drawn for the corpus. $Label1 to $Label5
// are Thunderbird's tags and become Outlook's categories of the same
// meaning; $Forwarded becomes Outlook's "forwarded" verb; any other
// keyword becomes a category of its own name.
var corpusKeywords = []struct {
	flag     imap.Flag
	category string // "" for none
}{
	{"$Forwarded", ""},
	{"$Label1", "Important"},
	{"$Label2", "Work"},
	{"$Label3", "Personal"},
	{"$Label4", "To Do"},
	{"$Label5", "Later"},
	{"Project-X", "Project-X"},
}

// PidTagLastVerbExecuted values (MS-OXOMSG 2.2.1.62).
const (
	verbReply   = 102
	verbForward = 104
)

// corpusMsg is one message of the corpus with what was drawn for it.
type corpusMsg struct {
	file   string
	raw    []byte // the file's bytes, or the generated message
	folder int    // index into corpusFolders
	flags  []imap.Flag
	date   time.Time // the INTERNALDATE
	crypto bool      // S/MIME or PGP/MIME at the top level
	big    bool      // the generated 40 MB message
}

// cryptoType finds a top-level S/MIME or PGP/MIME Content-Type in the
// header block (up to the first empty line).
var cryptoType = regexp.MustCompile(`(?im)^content-type:[ \t]*(multipart/(signed|encrypted)|application/(x-)?pkcs7-mime)\b`)

func headerBlock(raw []byte) []byte {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 {
			return raw[:i]
		}
	}
	return raw
}

// loadCorpus reads testdata/corpus as MANIFEST.txt lists it, checks that
// the manifest and the directory agree, and draws each message's folder,
// flags and INTERNALDATE from corpusSeed. With big, the generated 40 MB
// message comes last; the draws of the others do not depend on it.
func loadCorpus(t *testing.T, big bool) []*corpusMsg {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "MANIFEST.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := strings.Fields(line)[0]
		if listed[name] {
			t.Fatalf("MANIFEST.txt lists %s twice", name)
		}
		listed[name] = true
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") && !listed[e.Name()] {
			t.Errorf("%s is not in MANIFEST.txt", e.Name())
		}
	}
	if !slices.Contains(names, bigFile) {
		t.Fatalf("MANIFEST.txt does not list %s", bigFile)
	}

	rng := rand.New(rand.NewPCG(corpusSeed, 1))
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -5*3600),
		time.FixedZone("", 5*3600+1800), time.FixedZone("", 13*3600+45*60), time.FixedZone("", -(3*3600 + 1800))}
	var msgs []*corpusMsg
	for i, name := range names {
		m := &corpusMsg{file: name}
		// Folders, flags and dates are drawn for every message, the big
		// one included, so that leaving it out changes nothing else.
		m.folder = rng.IntN(len(corpusFolders))
		if rng.IntN(10) < 6 {
			m.flags = append(m.flags, imap.FlagSeen)
		}
		if rng.IntN(10) < 3 {
			m.flags = append(m.flags, imap.FlagFlagged)
		}
		if rng.IntN(10) < 3 {
			m.flags = append(m.flags, imap.FlagAnswered)
		}
		for _, k := range corpusKeywords {
			if rng.IntN(10) < 3 {
				m.flags = append(m.flags, k.flag)
			}
		}
		// Years apart: 1975, 1976, ... one per message.
		m.date = time.Date(1975+i, time.Month(1+rng.IntN(12)), 1+rng.IntN(28),
			rng.IntN(24), rng.IntN(60), rng.IntN(60), 0, zones[rng.IntN(len(zones))])
		switch {
		case name == bigFile:
			if !big {
				continue
			}
			m.big, m.raw = true, corpusBigMessage()
		default:
			if m.raw, err = os.ReadFile(filepath.Join(corpusDir, name)); err != nil {
				t.Fatal(err)
			}
		}
		if strings.Contains(name, "duplicate-message-id") {
			m.folder = 3 // both copies in one folder, where a Message-ID clash would matter
		}
		if len(m.raw) == 0 {
			// APPEND refuses a zero-byte message, so it is written to the
			// Maildir, whose path for a non-ASCII name dovecottest does not
			// know (Dovecot stores modified UTF-7): use an ASCII folder.
			m.folder = 3
		}
		m.crypto = cryptoType.Match(headerBlock(m.raw))
		msgs = append(msgs, m)
	}

	// The draws must cover every flag, and $Forwarded with and without
	// \Answered; a new seed or corpus that does not is caught here.
	seen := map[imap.Flag]int{}
	for _, m := range msgs {
		for _, fl := range m.flags {
			seen[fl]++
		}
		if slices.Contains(m.flags, "$Forwarded") {
			if slices.Contains(m.flags, imap.FlagAnswered) {
				seen["forwarded+answered"]++
			} else {
				seen["forwarded alone"]++
			}
		}
	}
	for _, fl := range []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, "forwarded+answered", "forwarded alone"} {
		if seen[fl] == 0 {
			t.Fatalf("corpusSeed %d draws no message with %s", corpusSeed, fl)
		}
	}
	for _, k := range corpusKeywords {
		if seen[k.flag] == 0 {
			t.Fatalf("corpusSeed %d draws no message with %s", corpusSeed, k.flag)
		}
	}
	if n := len(msgs); n < 40 {
		t.Fatalf("the corpus has %d messages, want at least 40", n)
	}
	return msgs
}

// corpusBigMessage builds the generated message of the corpus: a text
// part and a 40 MB attachment of deterministic pseudo-random bytes
// (bigPayload), base64 in 76-character CRLF lines: about 55 MB of MIME.
// It is built at test time rather than stored.
func corpusBigMessage() []byte {
	payload := bigPayload()
	var b bytes.Buffer
	b.Grow(bigAttachment*4/3 + bigAttachment/38 + 4096)
	b.WriteString("From: Archive Robot <robot@example.org>\r\nTo: Alice <alice@example.org>\r\n" +
		"Subject: Scanned archive, 40 MB\r\nDate: Tue, 11 Jun 2019 12:00:00 +0200\r\n" +
		"Message-ID: <corpus-big@mailferry.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"big-b\"\r\n\r\n" +
		"--big-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe archive is attached.\r\n\r\n" +
		"--big-b\r\nContent-Type: application/octet-stream; name=\"archive.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"archive.bin\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(payload)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n--big-b--\r\n")
	return b.Bytes()
}

// bigPayload is the 40 MB attachment of corpusBigMessage.
func bigPayload() []byte {
	var seed [32]byte
	copy(seed[:], "mailferry corpus 40 MB payload")
	p := make([]byte, bigAttachment)
	rand.NewChaCha8(seed).Read(p)
	return p
}

// seededMsg is a corpus message as one Dovecot holds it.
type seededMsg struct {
	*corpusMsg
	mailbox string // the IMAP name of its folder, the Folder of its SourceID
	uid     uint32
	served  []byte // BODY[] as Dovecot serves it
}

// seedCorpus stores msgs in user's mailbox on dc: APPEND with their flags
// and INTERNALDATE, except a zero-byte message, which APPEND refuses
// ("Can't save a zero byte message") and which is written to the Maildir
// instead, its keywords then set with STORE. It then reads every message
// back (BODY.PEEK[], FLAGS, INTERNALDATE) and checks flags and dates.
//
// What Dovecot serves is not always the file: it ends bare-LF lines with
// CRLF and turns NUL into 0x80. A migration can only keep the bytes it was
// given, so the checks compare with what Dovecot serves; the difference
// is logged.
func seedCorpus(t *testing.T, dc *dovecottest.Server, user, password string, msgs []*corpusMsg) []*seededMsg {
	t.Helper()
	c := imapsrctest.Client(t, dc.Addr(), user, password)
	mailbox := func(path []string) string {
		if len(path) == 1 && path[0] == "INBOX" {
			return "INBOX"
		}
		return dc.Prefix() + strings.Join(path, dc.Delimiter())
	}
	for _, f := range corpusFolders {
		for n := 1; n <= len(f.path); n++ {
			if name := mailbox(f.path[:n]); name != "INBOX" {
				if err := c.Create(name, nil).Wait(); err != nil && !strings.Contains(strings.ToLower(err.Error()), "exists") {
					t.Fatalf("create %q: %v", name, err)
				}
			}
		}
	}
	out := make([]*seededMsg, len(msgs))
	byMailbox := map[string][]*seededMsg{}
	var direct []*seededMsg
	for i, m := range msgs {
		s := &seededMsg{corpusMsg: m, mailbox: mailbox(corpusFolders[m.folder].path)}
		out[i] = s
		byMailbox[s.mailbox] = append(byMailbox[s.mailbox], s)
		if len(m.raw) == 0 {
			direct = append(direct, s)
			continue
		}
		cmd := c.Append(s.mailbox, int64(len(m.raw)), &imap.AppendOptions{Flags: m.flags, Time: m.date})
		if _, err := cmd.Write(m.raw); err != nil {
			t.Fatalf("append %s: %v", m.file, err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatalf("append %s: %v", m.file, err)
		}
		data, err := cmd.Wait()
		if err != nil {
			t.Fatalf("append %s: %v", m.file, err)
		}
		if data.UID == 0 {
			t.Fatalf("append %s: no APPENDUID", m.file)
		}
		s.uid = uint32(data.UID)
	}
	for _, s := range direct {
		var system []string
		for _, fl := range s.flags {
			if strings.HasPrefix(string(fl), `\`) {
				system = append(system, string(fl))
			}
		}
		if err := dc.WriteMaildir(user, s.mailbox, []dovecottest.MaildirMessage{{Raw: s.raw, Flags: system, Date: s.date}}); err != nil {
			t.Fatal(err)
		}
	}

	for name, list := range byMailbox {
		if _, err := c.Select(name, nil).Wait(); err != nil {
			t.Fatalf("select %q: %v", name, err)
		}
		fetched, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatalf("fetch %q: %v", name, err)
		}
		byUID := map[uint32]*imapclient.FetchMessageBuffer{}
		for _, f := range fetched {
			byUID[uint32(f.UID)] = f
		}
		// Messages written to the Maildir took the UIDs that APPEND did
		// not hand out, in the order written.
		var unclaimed []uint32
		for _, f := range fetched {
			if !slices.ContainsFunc(list, func(s *seededMsg) bool { return s.uid == uint32(f.UID) }) {
				unclaimed = append(unclaimed, uint32(f.UID))
			}
		}
		for _, s := range list {
			if s.uid != 0 {
				continue
			}
			if len(unclaimed) == 0 {
				t.Fatalf("%s: not found in %q after writing it to the Maildir", s.file, name)
			}
			s.uid, unclaimed = unclaimed[0], unclaimed[1:]
			var kw []imap.Flag
			for _, fl := range s.flags {
				if !strings.HasPrefix(string(fl), `\`) {
					kw = append(kw, fl)
				}
			}
			if len(kw) > 0 {
				if err := c.Store(imap.UIDSetNum(imap.UID(s.uid)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: kw}, nil).Close(); err != nil {
					t.Fatalf("store keywords of %s: %v", s.file, err)
				}
				byUID[s.uid].Flags = append(byUID[s.uid].Flags, kw...)
			}
		}
		if len(unclaimed) > 0 {
			t.Fatalf("%q holds messages the corpus does not: UIDs %v", name, unclaimed)
		}
		for _, s := range list {
			f := byUID[s.uid]
			if f == nil || len(f.BodySection) != 1 {
				t.Fatalf("%s: UID %d not served by %q", s.file, s.uid, name)
			}
			s.served = f.BodySection[0].Bytes
			got := slices.DeleteFunc(slices.Clone(f.Flags), func(fl imap.Flag) bool { return strings.EqualFold(string(fl), `\Recent`) })
			if !sameFlags(got, s.flags) {
				t.Fatalf("%s: Dovecot holds flags %v, appended %v", s.file, got, s.flags)
			}
			if !f.InternalDate.Equal(s.date) {
				t.Fatalf("%s: Dovecot holds INTERNALDATE %v, appended %v", s.file, f.InternalDate, s.date)
			}
		}
	}
	return out
}

func sameFlags(a, b []imap.Flag) bool {
	norm := func(fl []imap.Flag) []string {
		out := make([]string, len(fl))
		for i, f := range fl {
			out[i] = strings.ToLower(string(f))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// servedDiff says how Dovecot's bytes differ from the file's, "" if not.
func servedDiff(raw, served []byte) string {
	if bytes.Equal(raw, served) {
		return ""
	}
	var what []string
	if bytes.Contains(raw, []byte{0}) && !bytes.Contains(served, []byte{0}) {
		what = append(what, "NUL served as 0x80")
	}
	if bytes.Count(served, []byte("\r\n")) > bytes.Count(raw, []byte("\r\n")) {
		what = append(what, "bare LF served as CRLF")
	}
	if len(what) == 0 {
		what = append(what, "other changes")
	}
	return fmt.Sprintf("%s (%d bytes on file, %d served)", strings.Join(what, ", "), len(raw), len(served))
}

// corpusMode is one way of migrating the corpus.
type corpusMode struct {
	name string
	// received, when set, is Options.ReceivedDates; nil leaves the
	// default.
	received *exchange.ReceivedDates
	// importMayLoseDate: in this mode any message that importMime takes
	// byte for byte may show the time of its import as received, not only
	// S/MIME and PGP messages (which may in every mode).
	importMayLoseDate bool
	// courierAdmin: a Courier-style INBOX. namespace, read through an
	// admin login (SASL PLAIN, authorization identity = the user).
	courierAdmin bool
	// big adds the generated 40 MB message.
	big bool
	// refuseBroken makes the emulated importMime refuse the MIME of the
	// structurally broken files (refusedByImport), as Exchange Online
	// refuses some real-world mail with 400 ErrorMimeContentInvalid
	// without documenting which: the fallback (rebuilt or degraded, the
	// original attached) is then what the test checks for those.
	refuseBroken bool
	// honourDeliveryTime makes the emulator honour a PATCH of
	// PidTagMessageDeliveryTime after importMime (see
	// setHonourDeliveryTime), so that the sink's received-date probe finds
	// that importMime can keep received dates.
	honourDeliveryTime bool
}

// corpusModes are the runs of TestCorpusEndToEnd.
//
// "default" leaves Options.ReceivedDates at its zero value, whatever the
// default is: ReceivedDateAtImport before the received-date policy
// change, ReceivedDateFromSource (keep received dates; JSON create, or
// importMime plus the delivery-time PATCH where the sink's probe finds the
// tenant honours it; S/MIME and PGP through importMime byte for byte)
// after it. Its checks are written for the latter.
func corpusModes() []corpusMode {
	atImport := exchange.ReceivedDateAtImport
	return []corpusMode{
		// The 40 MB message costs most of the run's time (about 55 MB
		// appended, fetched, parsed and uploaded in 4 MB ranges), and it
		// takes the JSON create with an upload session in every mode
		// (over 3 MB, importMime cannot take it): once is enough.
		{name: "default", big: true},
		{name: "at-import", received: &atImport, importMayLoseDate: true},
		{name: "at-import-refusing", received: &atImport, importMayLoseDate: true, refuseBroken: true},
		{name: "courier-admin", courierAdmin: true},
		// The default again, against a tenant (emulated) that lets the
		// PATCH after importMime set the received date: exact MIME and
		// exact date.
		{name: "default-probe-honoured", honourDeliveryTime: true},
	}
}

// corpusRow is one mode's measurement: the path each message took and
// what the Graph requests cost.
type corpusRow struct {
	mode                                string
	messages                            int
	imported, rebuilt, degraded, failed int
	requests                            int
	uploadBytes                         int64
	routes                              map[string]int
	failing                             []string            // shortName of each file that fails a check
	classes                             []string            // "class (n): files", one per kind of check failed
	paths                               map[string][]string // "import", "rebuilt", "degraded", "failed" -> short names
	elapsed                             time.Duration
}

// TestCorpusEndToEnd migrates the corpus from a real Dovecot into the
// Graph emulator, in each of corpusModes, and checks every message: it is
// in the target exactly once (found by its watermark), in the folder its
// source folder maps to; byte-identical where importMime took it, else,
// if the report lists it as degraded, with an attachment whose bytes are
// exactly the original; read, flagged, answered/forwarded and categories
// as its flags and keywords say; not a draft; received at its
// INTERNALDATE wherever the path keeps it. Nothing fails: the corpus
// holds nothing the target must refuse. The paths taken and the Graph
// requests per message are logged as a table for BENCHMARKS.md
// (go test -run TestCorpusEndToEnd -v).
func TestCorpusEndToEnd(t *testing.T) {
	var rows []corpusRow
	for _, mode := range corpusModes() {
		t.Run(mode.name, func(t *testing.T) {
			row := runCorpusMode(t, mode)
			rows = append(rows, row)
		})
	}
	var b strings.Builder
	b.WriteString("corpus paths per mode (seed " + fmt.Sprint(corpusSeed) + "):\n")
	b.WriteString("| mode | messages | import | rebuilt | degraded | failed | Graph requests | requests/message | upload MB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	pct := func(n, of int) string { return fmt.Sprintf("%d (%.0f%%)", n, 100*float64(n)/float64(max(of, 1))) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %d | %.2f | %.1f |\n", r.mode, r.messages,
			pct(r.imported, r.messages), pct(r.rebuilt, r.messages), pct(r.degraded, r.messages), pct(r.failed, r.messages),
			r.requests, float64(r.requests)/float64(max(r.messages, 1)), float64(r.uploadBytes)/(1<<20))
	}
	for _, r := range rows {
		keys := make([]string, 0, len(r.routes))
		for k := range r.routes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, r.routes[k]))
		}
		fmt.Fprintf(&b, "requests of %s (%s): %s\n", r.mode, r.elapsed.Round(10*time.Millisecond), strings.Join(parts, ", "))
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "paths of %s:", r.mode)
		for _, p := range []string{"import", "rebuilt", "degraded", "failed"} {
			if len(r.paths[p]) > 0 {
				fmt.Fprintf(&b, " %s: %s;", p, strings.Join(r.paths[p], " "))
			}
		}
		b.WriteString("\n")
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "failing in %s: %d of %d: %s\n", r.mode, len(r.failing), r.messages, strings.Join(r.failing, " "))
		for _, c := range r.classes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	t.Log(b.String())
}

func runCorpusMode(t *testing.T, mode corpusMode) corpusRow {
	start := time.Now()
	var eopts exchangetest.Options
	eopts.HonourDeliveryTimePatch = mode.honourDeliveryTime
	msgs := loadCorpus(t, mode.big)
	row := corpusRow{mode: mode.name, messages: len(msgs), paths: map[string][]string{}}
	var refused [][]byte
	if mode.refuseBroken {
		for _, m := range msgs {
			if refusedByImport[m.file] {
				refused = append(refused, m.raw)
			}
		}
	}
	if mode.big {
		row.mode += " (+40 MB)"
	}

	var (
		dc       *dovecottest.Server
		srcOpts  imapsrc.Options
		seeded   []*seededMsg
		userName = "alice"
	)
	if mode.courierAdmin {
		userName = "carol"
		dc = dovecottest.Start(t, &dovecottest.Options{Layout: dovecottest.LayoutCourier,
			Users: map[string]string{"carol": "carol-pw"}, MasterUser: "admin", MasterPassword: "admin-pw"})
		seeded = seedCorpus(t, dc, "carol", "carol-pw", msgs)
		// The admin's credentials, carol's mailbox: imapsrc sends SASL
		// PLAIN with authorization identity "carol".
		srcOpts = imapsrc.Options{Addr: dc.Addr(), Username: "admin", Password: "admin-pw", AuthzID: "carol"}
	} else {
		dc = dovecottest.Start(t, &dovecottest.Options{Users: map[string]string{"alice": "alice-pw"}})
		seeded = seedCorpus(t, dc, "alice", "alice-pw", msgs)
		srcOpts = imapsrc.Options{Addr: dc.Addr(), Username: "alice", Password: "alice-pw"}
	}
	for _, s := range seeded {
		if d := servedDiff(s.raw, s.served); d != "" {
			t.Logf("%s: Dovecot serves other bytes than the file: %s", s.file, d)
		}
	}

	// Pacing off (the emulator throttles nothing here): paced to Exchange
	// Online's 150 MB of upload per 5 minutes, the 40 MB message alone
	// would take 80 seconds. Requests are counted all the same.
	xo := exchange.Options{Budget: &exchange.Budget{MaxConcurrentRequests: 4}}
	if mode.received != nil {
		xo.ReceivedDates = *mode.received
	}
	graph, sink := newGraph(t, &eopts, &xo)
	if len(refused) > 0 {
		graph.RejectMIME(func(mime []byte) bool {
			return slices.ContainsFunc(refused, func(raw []byte) bool { return sameMessage(mime, raw) })
		})
	}
	src := newSource(t, &srcOpts)
	eng := migrate.NewEngine(nil)
	runStart := time.Now()
	rep := eng.Run(t.Context(), migrate.Job{Mailbox: target, Source: src, Sink: sink})
	runEnd := time.Now()
	mr := rep.Mailboxes[0]
	if mr.Status != migrate.StatusCompleted {
		t.Errorf("%s: mailbox %s: %s", userName, mr.Status, mr.Error)
	}
	tot := mr.Totals()
	if tot.Failed != 0 {
		t.Errorf("report: %d failed, want 0 (no corpus message is one the target must refuse)", tot.Failed)
	}
	if n := tot.Copied + tot.Degraded; n != len(msgs) {
		t.Errorf("report: %d copied and %d degraded, want %d in all", tot.Copied, tot.Degraded, len(msgs))
	}

	type key struct {
		folder string
		uid    uint32
	}
	problems := map[key][]migrate.Problem{}
	for _, p := range mr.Problems {
		problems[key{p.Folder, p.UID}] = append(problems[key{p.Folder, p.UID}], p)
	}
	stored := graph.Messages(target)
	copies := map[key][]exchangetest.Message{}
	for _, m := range stored {
		wm, ok := m.ExtendedProperties[exchange.WatermarkProperty]
		if !ok {
			t.Errorf("item %s (%q) has no watermark", m.ID, m.Subject)
			continue
		}
		id, err := migrate.ParseSourceID(wm)
		if err != nil {
			t.Errorf("item %s: %v", m.ID, err)
			continue
		}
		copies[key{id.Folder, id.UID}] = append(copies[key{id.Folder, id.UID}], m)
	}
	if len(stored) != len(msgs) {
		t.Errorf("the mailbox holds %d items, the corpus %d messages", len(stored), len(msgs))
	}

	failing := map[string][]string{}
	classes := map[string][]string{} // failure class -> short names of the files
	fail := func(s *seededMsg, class, format string, args ...any) {
		failing[s.file] = append(failing[s.file], fmt.Sprintf(format, args...))
		if c := classes[class]; len(c) == 0 || c[len(c)-1] != shortName(s.file) {
			classes[class] = append(c, shortName(s.file))
		}
	}
	for _, s := range seeded {
		k := key{s.mailbox, s.uid}
		var degraded bool
		for _, p := range problems[k] {
			switch p.Action {
			case migrate.ActionDegrade:
				degraded = true
			case migrate.ActionCopy:
				fail(s, "refused", "failed: %s", p.Reason)
			default:
				fail(s, "problem", "%s: %s", p.Action, p.Reason)
			}
		}
		got := copies[k]
		if len(got) != 1 {
			if len(got) == 0 {
				row.failed++
				row.paths["failed"] = append(row.paths["failed"], shortName(s.file))
			}
			fail(s, "copies", "%d copies in the target, want 1", len(got))
			continue
		}
		m := got[0]

		// The path, and the bytes it keeps.
		importTime := !m.ReceivedDateTime.Before(runStart.Truncate(time.Second)) && !m.ReceivedDateTime.After(runEnd.Add(time.Second))
		mayLoseDate := false
		switch {
		case degraded:
			row.degraded++
			row.paths["degraded"] = append(row.paths["degraded"], shortName(s.file))
			if !hasAttachment(m, s.served) {
				fail(s, "original-not-attached", "degraded without an attachment holding the original's %d bytes (%d attachments)", len(s.served), len(m.Attachments))
			}
		case mode.refuseBroken && refusedByImport[s.file]:
			fail(s, "refusal-not-degraded", "importMime refused it, yet it is not reported degraded")
		case m.MIME != nil:
			row.imported++
			row.paths["import"] = append(row.paths["import"], shortName(s.file))
			if !bytes.Equal(m.MIME, s.served) {
				fail(s, "bytes", "importMime took %d bytes, not the %d Dovecot served", len(m.MIME), len(s.served))
			}
			// importMime sets no received date: the import time, unless
			// the sink's probe found that the target keeps it.
			mayLoseDate = mode.importMayLoseDate || s.crypto
		default:
			row.rebuilt++
			row.paths["rebuilt"] = append(row.paths["rebuilt"], shortName(s.file))
			if s.crypto {
				fail(s, "crypto-rebuilt", "S/MIME or PGP message rebuilt (signature lost), want importMime byte for byte")
			}
			if s.big {
				checkBigAttachment(t, m, func(format string, args ...any) { fail(s, "big-attachment", format, args...) })
			}
		}
		if want := s.date.Truncate(time.Second); !m.ReceivedDateTime.Equal(want) && !(mayLoseDate && importTime) {
			how := "rebuilt"
			switch {
			case degraded:
				how = "degraded"
			case m.MIME != nil:
				how = "imported with importMime"
			}
			fail(s, "received-date", "%s, received %v, want the INTERNALDATE %v", how, m.ReceivedDateTime.UTC(), want.UTC())
		}

		// Folder and state.
		if path, want := graph.FolderPath(target, m.FolderID), corpusFolders[s.folder].target; !strings.EqualFold(path, want) {
			fail(s, "folder", "in folder %q, want %q", path, want)
		}
		if m.IsDraft {
			fail(s, "draft", "a draft")
		}
		has := func(fl imap.Flag) bool { return slices.Contains(s.flags, fl) }
		if m.IsRead != has(imap.FlagSeen) {
			fail(s, "read", "isRead=%v, flags %v", m.IsRead, s.flags)
		}
		if (m.FlagStatus == "flagged") != has(imap.FlagFlagged) {
			fail(s, "flagged", "flag %q, flags %v", m.FlagStatus, s.flags)
		}
		wantVerb := 0
		switch {
		case has(imap.FlagAnswered):
			wantVerb = verbReply
		case has("$Forwarded"):
			wantVerb = verbForward
		}
		if m.LastVerbExecuted != wantVerb {
			fail(s, "last-verb", "last verb %d, want %d (flags %v)", m.LastVerbExecuted, wantVerb, s.flags)
		}
		wantCats := []string{}
		for _, k := range corpusKeywords {
			if k.category != "" && has(k.flag) {
				wantCats = append(wantCats, k.category)
			}
		}
		gotCats := slices.Clone(m.Categories)
		slices.Sort(gotCats)
		slices.Sort(wantCats)
		if !slices.Equal(gotCats, wantCats) {
			fail(s, "categories", "categories %q, want %q (flags %v)", m.Categories, wantCats, s.flags)
		}
	}

	for class, files := range classes {
		row.classes = append(row.classes, fmt.Sprintf("%s (%d): %s", class, len(files), strings.Join(files, " ")))
	}
	slices.Sort(row.classes)
	for _, s := range seeded {
		if why := failing[s.file]; len(why) > 0 {
			row.failing = append(row.failing, shortName(s.file))
			t.Errorf("%s (%s UID %d): %s", s.file, s.mailbox, s.uid, strings.Join(why, "; "))
		}
	}
	st := graph.Stats()
	row.requests, row.uploadBytes = st.Requests, st.UploadBytes
	row.routes = map[string]int{}
	for r, n := range st.ByRoute {
		if n > 0 {
			row.routes[stableRoute(r)] += n
		}
	}
	row.elapsed = time.Since(start)
	return row
}

// hasAttachment reports whether m carries want, byte for byte, as a file
// attachment: among Graph's attachments, or, for an item imported from
// MIME, as a part of that MIME.
func hasAttachment(m exchangetest.Message, want []byte) bool {
	for _, a := range m.Attachments {
		if bytes.Equal(a.Content, want) {
			return true
		}
	}
	if m.MIME == nil {
		return false
	}
	ent, err := gomessage.Read(bytes.NewReader(m.MIME))
	if err != nil && ent == nil {
		return false
	}
	found := false
	_ = ent.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil || found {
			return nil
		}
		if t, _, _ := part.Header.ContentType(); strings.HasPrefix(t, "multipart/") {
			return nil // Walk reads its parts
		}
		if body, rerr := io.ReadAll(part.Body); rerr == nil && bytes.Equal(body, want) {
			found = true
		}
		return nil
	})
	return found
}

// checkBigAttachment checks that the generated message's 40 MB arrived
// whole, under its name.
func checkBigAttachment(t *testing.T, m exchangetest.Message, fail func(string, ...any)) {
	t.Helper()
	want := sha256.Sum256(bigPayload())
	for _, a := range m.Attachments {
		if a.Name == "archive.bin" {
			if sha256.Sum256(a.Content) != want || a.Size != bigAttachment {
				fail("archive.bin: %d bytes, not the %d generated", a.Size, bigAttachment)
			}
			return
		}
	}
	fail("no attachment archive.bin among %d", len(m.Attachments))
}

// rawIDs matches what a route the emulator does not template still holds
// of one run: the user and ids.
var rawIDs = regexp.MustCompile(`/users/[^/]+@[^/]+|/[A-Za-z0-9_=-]{24,}`)

// stableRoute templates the ids of a route counted by its raw path, so
// that the log reads the same from run to run.
func stableRoute(r string) string {
	if strings.Contains(r, "{") {
		return r
	}
	return rawIDs.ReplaceAllStringFunc(r, func(m string) string {
		if strings.HasPrefix(m, "/users/") {
			return "/users/{user}"
		}
		return "/{id}"
	})
}

// shortName is a corpus file's number ("07" for 07-nul-bytes.eml), or
// "big" for the generated message.
func shortName(file string) string {
	if file == bigFile {
		return "big"
	}
	n, _, _ := strings.Cut(file, "-")
	return n
}

// refusedByImport are the corpus files whose MIME the "at-import-refusing"
// mode makes the emulated importMime refuse: the structurally broken ones.
var refusedByImport = map[string]bool{
	"01-mbox-from-line.eml": true, "02-multipart-no-closing-boundary.eml": true, "03-header-without-colon.eml": true,
	"04-truncated-mid-base64.eml": true, "05-truncated-mid-part.eml": true, "06-broken-base64.eml": true,
	"45-deep-nesting.eml": true, "46-multipart-without-boundary.eml": true, "47-bad-content-type-syntax.eml": true,
}

// sameMessage reports whether mime, as importMime received it, is raw as
// Dovecot serves it: the same bytes once bare LFs are made CRLF.
func sameMessage(mime, raw []byte) bool {
	norm := func(b []byte) []byte {
		return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	}
	return bytes.Equal(norm(mime), norm(raw))
}
