package imapsrc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// List calls fn with the metadata of every message of folder f, in
// ascending UID order, as the server streams it: one
// UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]) on the folder opened read-only.
// Nothing is collected: memory does not grow with the folder.
//
// If the folder's UIDVALIDITY differs from f.UIDValidity (when that is
// not 0), List returns an error matching migrate.ErrUIDValidityChanged.
// If the connection drops, List reconnects, checks UIDVALIDITY again and
// goes on after the last UID given to fn. If fn returns an error, List
// stops and returns it unchanged. Once ctx is done, fn is not called
// again: List returns ctx's error (or nil, had the listing just ended).
func (s *Source) List(ctx context.Context, f migrate.Folder, fn func(migrate.MessageInfo) error) error {
	return s.list(ctx, f, 0, fn)
}

// ListChanges implements migrate.ChangeLister: it calls fn, in ascending
// UID order, with the metadata of every message of folder f added or
// whose flags changed since the mod-sequence since, with one
// UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]) (CHANGEDSINCE since) on the
// folder opened read-only with CONDSTORE (RFC 7162). Expunged messages
// are not reported.
//
// Without CONDSTORE on the server, with since 0, for a folder without
// mod-sequences (NOMODSEQ) or whose HIGHESTMODSEQ went below since, it
// returns an error matching migrate.ErrNoModSeq: list the whole folder
// instead. UIDVALIDITY, dropped connections and fn's errors are handled
// as by List.
func (s *Source) ListChanges(ctx context.Context, f migrate.Folder, since uint64, fn func(migrate.MessageInfo) error) error {
	if since == 0 {
		return fmt.Errorf("imapsrc: list changes in %q: no earlier mod-sequence: %w", f.Name, migrate.ErrNoModSeq)
	}
	return s.list(ctx, f, since, fn)
}

// list is List (since 0) and ListChanges.
func (s *Source) list(ctx context.Context, f migrate.Folder, since uint64, fn func(migrate.MessageInfo) error) error {
	var last imap.UID // last UID given to fn
	delivered := 0
	want := f.UIDValidity
	what := fmt.Sprintf("list %q", f.Name)
	if since > 0 {
		what = fmt.Sprintf("list changes in %q", f.Name)
	}
	err := s.do(ctx, what, func() int { return delivered }, func(pc *pconn) error {
		c := pc.c
		if since > 0 && !pc.info.caps.Has(imap.CapCondStore) {
			return fmt.Errorf("the server lacks CONDSTORE: %w", migrate.ErrNoModSeq)
		}
		sel, err := examine(pc, f.Name, &want, since > 0)
		if err != nil {
			return err
		}
		if sel.NumMessages == 0 {
			return nil
		}
		if since > 0 {
			switch {
			case sel.HighestModSeq == 0:
				return fmt.Errorf("the folder has no mod-sequences (NOMODSEQ): %w", migrate.ErrNoModSeq)
			case sel.HighestModSeq < since:
				return fmt.Errorf("HIGHESTMODSEQ %d is below %d: %w", sel.HighestModSeq, since, migrate.ErrNoModSeq)
			case sel.HighestModSeq == since:
				return nil // nothing changed
			}
		}
		var set imap.UIDSet
		set.AddRange(last+1, 0) // last+1:*
		cmd := c.Fetch(set, &imap.FetchOptions{
			UID:          true,
			Flags:        true,
			InternalDate: true,
			RFC822Size:   true,
			BodySection:  []*imap.FetchItemBodySection{messageIDSection},
			ChangedSince: since,
		})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			info, err := readInfo(msg, nil)
			if err != nil {
				// The stream is out of step; start afresh.
				if errors.Is(err, errIncomplete) {
					s.abort(pc, cmd)
				} else {
					s.abortAfterLiteral(pc, cmd) // the header failed to read
				}
				return err
			}
			// "last+1:*" includes the highest UID even when it is lower
			// than last+1 (RFC 9051 section 6.4.9); skip what fn has seen.
			if info.UID == 0 || imap.UID(info.UID) <= last {
				continue
			}
			if err := ctx.Err(); err != nil {
				// No callback once ctx is done, whatever is buffered.
				s.abort(pc, cmd)
				return err
			}
			if err := fn(info); err != nil {
				// Abandon the rest of the listing without reading it.
				s.abort(pc, cmd)
				return &callbackError{err}
			}
			last = imap.UID(info.UID)
			delivered++
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("UID FETCH: %w", err)
		}
		return nil
	})
	return unwrapCallback(what, err)
}

// messageIDSection is BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)].
var messageIDSection = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// ErrNoFolder marks an error about a folder the server says does not
// exist or cannot be opened (NO to EXAMINE, such as a folder deleted
// during the migration). It concerns that folder only: the connection and
// the other folders are fine, and it does not match migrate.ErrMailbox.
var ErrNoFolder = errors.New("folder cannot be opened")

// examine opens mailbox read-only (with CONDSTORE if condstore) and checks
// its UIDVALIDITY against *want, or sets *want when it is 0. It sends
// EXAMINE even for the mailbox already selected on pc: only a new
// selection shows the mailbox as it is now (see reuseOrExamine).
func examine(pc *pconn, mailbox string, want *uint32, condstore bool) (*imap.SelectData, error) {
	// A SELECT or EXAMINE deselects the mailbox selected before it, and
	// if it fails none is selected (RFC 3501 section 6.3.1).
	pc.selected, pc.validity, pc.reuseUntil = "", 0, time.Time{}
	sel, err := pc.c.Select(mailbox, &imap.SelectOptions{ReadOnly: true, CondStore: condstore}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, fmt.Errorf("EXAMINE: %w: %w", ErrNoFolder, err)
		}
		return nil, fmt.Errorf("EXAMINE: %w", err)
	}
	pc.selected, pc.validity = mailbox, sel.UIDValidity // even if not the one wanted
	if *want == 0 {
		*want = sel.UIDValidity
	} else if sel.UIDValidity != *want {
		return nil, fmt.Errorf("UIDVALIDITY is %d, was %d: %w", sel.UIDValidity, *want, migrate.ErrUIDValidityChanged)
	}
	return sel, nil
}

// reuseOrExamine opens mailbox for a Fetch on pc as examine does, unless
// pc has it open, with the UIDVALIDITY *want (not 0), from a Fetch whose
// EXAMINE was recent: less than minReuse ago, or than reuseFactor times
// what that EXAMINE took, whichever is longer.
//
// A selection kept open is never told that its mailbox was deleted and
// created again (a new UIDVALIDITY): the session goes on with the old
// mailbox (Dovecot answers for its messages with NIL bodies, which Fetch
// leaves out as expunged, no longer trusting the selection after that;
// the in-memory server hands over the old messages), and only a new
// EXAMINE shows the change. But an EXAMINE costs what opening the
// mailbox costs the server, which grows with its size: on Dovecot with
// Maildir about 2 ms for 1,000 messages, 3 to 13 ms for 10,000 and 20 to
// 80 ms for 30,000, where reading a batch of 200 messages takes about
// 10 ms. One EXAMINE per Fetch call made reading a 10,000-message folder
// in batches of 200 (BenchmarkReadSource) over four times slower: about
// 1.05 s instead of 0.23 s. So back-to-back Fetch calls on one folder,
// as the Engine makes them, share one. EXAMINEs then take at most
// 1/reuseFactor of the time of a long run of Fetch calls, and a changed
// UIDVALIDITY goes unseen at most that long (a Fetch is never sure of it
// anyway: the folder may change during its UID FETCH). A selection List,
// ListChanges or UIDs made is not reused: the first Fetch after a
// listing opens the folder afresh.
func reuseOrExamine(pc *pconn, mailbox string, want *uint32) error {
	if pc.selected == mailbox && *want != 0 && pc.validity == *want && time.Now().Before(pc.reuseUntil) {
		return nil
	}
	start := time.Now()
	if _, err := examine(pc, mailbox, want, false); err != nil {
		return err
	}
	took := time.Since(start)
	pc.reuseUntil = time.Now().Add(max(minReuse, reuseFactor*took))
	return nil
}

// How long Fetch trusts a selection it made (see reuseOrExamine).
const (
	minReuse    = time.Second
	reuseFactor = 50
)

// deselect closes the mailbox selected on pc, if any, so that the STATUS
// commands that follow report it as it is now. RFC 9051 section 6.3.11
// says STATUS should not be used on the selected mailbox, and Dovecot
// answers it from the session's own view, as of that session's last
// command: the message count, HIGHESTMODSEQ and even the UIDVALIDITY
// from before other sessions' changes (a delta pass would then skip new
// mail).
//
// deselect sends UNSELECT (RFC 3691, part of IMAP4rev2) where the server
// has it, else an EXAMINE of a mailbox that does not exist: a SELECT or
// EXAMINE closes the selected mailbox first, and when it fails none is
// selected (RFC 3501 section 6.3.1). Not CLOSE: it expunges nothing from
// a mailbox opened with EXAMINE, as imapsrc opens them all, by RFC 3501
// section 6.4.2, but go-imap's own server expunges it all the same, and
// a source must never lose a message marked \Deleted.
//
// Refreshing the selection instead (a NOOP, then the selected state's
// values) would not do: a NOOP brings new messages (EXISTS) but no new
// HIGHESTMODSEQ unless CONDSTORE is enabled on the session, and never a
// new UIDVALIDITY: a session is not told that the folder it has selected
// was deleted and created again (see reuseOrExamine).
//
// A refusal of UNSELECT (NO or BAD: nothing was selected after all) is no
// error, nor one of that EXAMINE.
func deselect(pc *pconn) error {
	if pc.selected == "" {
		return nil
	}
	var ie *imap.Error
	if !pc.info.caps.Has(imap.CapUnselect) && !pc.info.caps.Has(imap.CapIMAP4rev2) {
		// The expected NO leaves nothing selected. Should the mailbox
		// exist after all, it is the one selected now, and the one whose
		// STATUS may be stale.
		if _, err := examine(pc, noSuchMailbox, new(uint32), false); err != nil && !errors.As(err, &ie) {
			return err
		}
		return nil
	}
	err := pc.c.Unselect().Wait()
	if err != nil && !errors.As(err, &ie) {
		return fmt.Errorf("UNSELECT: %w", err)
	}
	pc.selected, pc.validity, pc.reuseUntil = "", 0, time.Time{}
	return nil
}

// noSuchMailbox is the mailbox deselect EXAMINEs to close the selected
// one on a server without UNSELECT.
const noSuchMailbox = "imapsrc-deselect-no-such-folder-4f1c9a"

// readInfo reads the metadata items of one FETCH response up to its body
// section. For a BODY[HEADER.FIELDS] section it parses the Message-ID; for
// a BODY[] section it stops and returns the section's literal in *body.
//
// go-imap ends the items of a response cut short by a broken connection
// as it ends those of a complete one. So, with body nil (List), readInfo
// checks that every item asked for came (UID, FLAGS, INTERNALDATE,
// RFC822.SIZE and the header section): a response without them fails
// with an error matching errIncomplete, and the message is not handed
// over: List reconnects and asks for it again, rather than deliver it
// without its metadata. For Fetch, a response without a body section
// leaves *body nil, as a NIL body does; Fetch hands over no message
// without a body.
func readInfo(msg *imapclient.FetchMessageData, body *imap.LiteralReader) (migrate.MessageInfo, error) {
	var info migrate.MessageInfo
	var seen fetchItems
	for {
		item := msg.Next()
		if item == nil {
			if body != nil {
				return info, nil
			}
			if missing := listItems &^ seen; missing != 0 {
				return info, fmt.Errorf("the FETCH response for UID %d ended without %s: %w", info.UID, missing, errIncomplete)
			}
			return info, nil
		}
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			info.UID = uint32(item.UID)
			seen |= itemUID
		case imapclient.FetchItemDataFlags:
			info.Flags = convertFlags(item.Flags)
			seen |= itemFlags
		case imapclient.FetchItemDataInternalDate:
			info.InternalDate = item.Time
			seen |= itemDate
		case imapclient.FetchItemDataRFC822Size:
			info.Size = item.Size
			seen |= itemSize
		case imapclient.FetchItemDataBodySection:
			if item.Section != nil && item.Section.Specifier == imap.PartSpecifierHeader {
				seen |= itemHeader
				if item.Literal != nil {
					// At most maxHeaderPeek bytes are kept: a Message-ID
					// field is far shorter, and a server that sends more
					// must not make the listing hold it all.
					lit := newBodyReader(item.Literal)
					hdr, err := io.ReadAll(io.LimitReader(lit, maxHeaderPeek))
					var skipped int64
					if err == nil {
						skipped, err = io.Copy(io.Discard, lit) // the rest is skipped
					}
					if err != nil {
						return info, fmt.Errorf("read header: %w", err)
					}
					if skipped > 0 {
						// Only the lines that end within the bound: a
						// field cut by it is not a whole one.
						hdr = hdr[:bytes.LastIndexByte(hdr, '\n')+1]
					}
					info.MessageID = parseMessageID(hdr)
				}
				continue
			}
			if body != nil {
				*body = item.Literal
				return info, nil
			}
		}
	}
}

// errIncomplete marks a FETCH response that ended before every item asked
// for had come: the connection broke in the middle of it, or the server
// left items out.
var errIncomplete = errors.New("FETCH response incomplete")

// fetchItems is a set of the items of a FETCH response.
type fetchItems uint8

const (
	itemUID fetchItems = 1 << iota
	itemFlags
	itemDate
	itemSize
	itemHeader

	// listItems are the items List asks for.
	listItems = itemUID | itemFlags | itemDate | itemSize | itemHeader
)

// String names the items of s, as IMAP does.
func (s fetchItems) String() string {
	var names []string
	for i, name := range []string{"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY[HEADER.FIELDS (MESSAGE-ID)]"} {
		if s&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, " ")
}

// convertFlags converts flags, leaving out \Recent (a session flag that
// cannot be stored anywhere).
func convertFlags(flags []imap.Flag) []migrate.Flag {
	out := make([]migrate.Flag, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, migrate.Flag(f))
	}
	return out
}

// parseMessageID returns the Message-ID of a header block, angle brackets
// kept (the first <...> of the field, or its whole value when it has
// none), or "". The header ends at its first blank line; folded lines are
// unfolded. A malformed line (an mbox "From " line, a stray continuation)
// neither hides the Message-ID nor fails the listing.
//
// It runs once per message on the hot path of a first pass, so it does not
// hand the header to go-message's textproto.ReadHeader, which parses every
// field: about 50 allocations and 4 µs for a typical header, against about
// 30 µs per message at Dovecot's speed, where this scan takes 0.1 µs.
// TestParseMessageIDAgreesWithGoMessage holds it to textproto's reading.
func parseMessageID(hdr []byte) string {
	const name = "message-id"
	for rest := hdr; len(rest) > 0; {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return "" // the blank line that ends the header
		}
		rest = next
		if len(line) <= len(name) || !strings.EqualFold(string(line[:len(name)]), name) {
			continue
		}
		v, ok := bytes.CutPrefix(bytes.TrimLeft(line[len(name):], " \t"), []byte(":"))
		if !ok {
			continue
		}
		value := string(v)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			line, rest, _ = bytes.Cut(rest, []byte("\n"))
			// Unfolded as go-message does: one space for the line break
			// and the white space that follows it.
			value += " " + string(bytes.TrimLeft(bytes.TrimSuffix(line, []byte("\r")), " \t"))
		}
		value = strings.TrimSpace(value)
		if i := strings.IndexByte(value, '<'); i >= 0 {
			if j := strings.IndexByte(value[i:], '>'); j >= 0 {
				return value[i : i+j+1]
			}
		}
		return value
	}
	return ""
}

// maxHeaderPeek bounds how much of a body Fetch reads ahead to find its
// Message-ID header, and how much of a BODY[HEADER.FIELDS (MESSAGE-ID)]
// answer List keeps.
const maxHeaderPeek = 64 << 10

// peekHeader returns the header block at the start of br's stream (up
// to maxHeaderPeek bytes of it) without consuming anything. Of a header
// longer than that, it returns the lines that end within the bound, so
// that a field cut by the bound (a Message-ID cut short) is not read as
// a whole one.
func peekHeader(br *bufio.Reader) []byte {
	n := 0
	for {
		n = min(max(2*n, 4096), br.Size())
		b, err := br.Peek(n)
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+2]
		}
		if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
			return b[:i+1]
		}
		if err != nil {
			return b // the whole message, a header without a body
		}
		if n == br.Size() {
			return b[:bytes.LastIndexByte(b, '\n')+1]
		}
	}
}
