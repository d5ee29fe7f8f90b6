package exchange

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/mailferry/mailferry/migrate"
)

// This file holds what Put does with a message that cannot be stored as
// it is: the JSON create of its parsed fields when importMime refused
// its MIME, and, when that cannot be done either, the degraded item: the
// headers that could be read, a short note, and the original message
// attached unchanged.

// noticeRefusedRebuilt is the notice (migrate.EventNotice) of a run in which
// importMime refused a message that the JSON create then took.
const noticeRefusedRebuilt = "exchange: importMime refused the MIME of some messages; they were created from their parsed " +
	"fields instead, like messages over 3 MB (Exchange rebuilt their MIME; their received date is the source's), " +
	"each with its original attached unchanged, and are reported as degraded"

// Limits of the degraded item.
const (
	// maxDegradedSubject is the longest subject, in characters, of a
	// degraded item: Outlook's subject line is 255 characters.
	maxDegradedSubject = 255
	// maxDegradedName is the longest attachment name, in characters,
	// before its ".eml".
	maxDegradedName = 100
	// maxDegradedWhy is the longest reason, in bytes, that the degraded
	// item's body quotes.
	maxDegradedWhy = 1000
)

// rebuildOrDegrade is the end of both paths for a message that importMime
// does not take (over MaxImportSize, ReceivedDateFromSource) or refused
// (refusal, a 400 such as ErrorMimeContentInvalid): p is the message
// parsed from raw, or perr why it could not be.
//
// When it parsed, m is created from its fields (createParsed). When it
// did not parse (a *rebuildError), or Graph refused that create as well
// (refusedAsIs), m is stored degraded (putDegraded) and Put returns the
// item's id with an error matching migrate.ErrDegraded. Any other error
// is returned: a message is failed only when Graph refuses every form
// of it, for a reason no other form avoids (the mailbox's size limit,
// say).
//
// A message that importMime refused and the JSON create took is created
// with its original attached unchanged, as a degraded item is, and Put
// returns its id with an error matching migrate.ErrDegraded: the caller
// asked for its exact MIME and got a rebuilt message, so the report lists
// it, with the refusal as the reason; the run's report also states, once,
// that it happened (noticeRefusedRebuilt).
func (mb *Mailbox) rebuildOrDegrade(ctx context.Context, op, folderID string, m *migrate.Message,
	p *parsedMessage, perr error, raw *rawCopy, refusal error) (string, error) {
	var causes []error
	if refusal != nil {
		causes = append(causes, refusal)
	}
	var re *rebuildError
	switch {
	case perr != nil && !errors.As(perr, &re):
		return "", fmt.Errorf("exchange: %s: %w", op, perr) // a spool failure, say
	case perr != nil:
		causes = append(causes, perr)
	default:
		if refusal != nil {
			// Rebuilt instead of imported as the caller asked: the
			// original goes along, unchanged, and the report says so.
			p.atts = append(p.atts, raw.attachment(degradedName(truncateRunes(decoded(p.header, "Subject"), maxDegradedSubject))))
		}
		id, err := mb.createParsed(ctx, op, folderID, m, messageJSON(p, m), p, refusal != nil)
		if err == nil {
			if refusal == nil {
				return id, nil
			}
			why := whyNot(op, causes)
			mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: importMime refused a message; created from its parsed fields, the original attached",
				slog.String("user", mb.user), slog.String("source", m.ID.String()), slog.String("reason", why))
			migrate.Notify(ctx, migrate.Event{Kind: migrate.EventNotice, Reason: noticeRefusedRebuilt})
			return id, migrate.DegradedError(&degradedError{op: op, why: why, causes: causes, rebuilt: true})
		}
		if refusal != nil {
			p.atts = p.atts[:len(p.atts)-1]
		}
		if !refusedAsIs(err) {
			return "", err
		}
		causes = append(causes, err)
	}
	return mb.putDegraded(ctx, op, folderID, m, raw, causes)
}

// putDegraded stores m, which could not be stored as it is for causes,
// as a degraded item (degradedMessage): the readable headers, a note,
// the flags and dates, and the original bytes attached unchanged, then
// the watermark, through createParsed (the original in the create while
// it fits, else POST .../attachments or an upload session, the item
// pending until it is in). The partial copies an earlier attempt left
// behind are deleted first. Should Graph refuse even that, it tries once
// more without the original's headers (a Message-ID or an address Graph
// will not take, say).
//
// It returns the new item's id and a *degradedError marked
// migrate.DegradedError, or the error of the last attempt.
func (mb *Mailbox) putDegraded(ctx context.Context, op, folderID string, m *migrate.Message, raw *rawCopy,
	causes []error) (string, error) {
	why := whyNot(op, causes)
	var err error
	for _, minimal := range []bool{false, true} {
		create, p := degradedMessage(raw, m, why, minimal)
		var id string
		id, err = mb.createParsed(ctx, op+": degraded item", folderID, m, create, p, true)
		if err == nil {
			mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: stored a message degraded, the original attached",
				slog.String("user", mb.user), slog.String("source", m.ID.String()), slog.String("reason", why))
			return id, migrate.DegradedError(&degradedError{op: op, why: why, causes: causes})
		}
		if !refusedAsIs(err) {
			break
		}
	}
	return "", fmt.Errorf("%w (stored neither as it is nor degraded; as it is, %s)", err, why)
}

// degradedError is why Put stored a message degraded.
type degradedError struct {
	op, why string
	causes  []error
	// rebuilt: the item is the message created from its parsed fields
	// (after importMime refused it), not the degraded item of
	// degradedMessage; both carry the original attached.
	rebuilt bool
}

// Error returns "exchange: <op>: stored degraded, the original attached:
// <why>", or for a rebuilt message "exchange: <op>: rebuilt from its
// fields, the original attached: <why>".
func (e *degradedError) Error() string {
	how := "stored degraded"
	if e.rebuilt {
		how = "rebuilt from its fields"
	}
	return "exchange: " + e.op + ": " + how + ", the original attached: " + e.why
}

// Unwrap returns the causes: each *GraphError or *rebuildError, without
// its mark (the message is stored, not failed).
func (e *degradedError) Unwrap() []error {
	out := make([]error, 0, len(e.causes))
	for _, c := range e.causes {
		var ge *GraphError
		var re *rebuildError
		switch {
		case errors.As(c, &ge):
			out = append(out, ge)
		case errors.As(c, &re):
			out = append(out, re)
		default:
			out = append(out, c)
		}
	}
	return out
}

// whyNot says in one line why each form of the message was not taken:
// "importMime refused it: 400 ErrorMimeContentInvalid: …; it cannot be
// created from its fields: …". Graph's answers carry no secret; an
// upload URL never reaches an error (putChunk).
func whyNot(op string, causes []error) string {
	var parts []string
	for _, c := range causes {
		var ge *GraphError
		var re *rebuildError
		switch {
		case errors.As(c, &ge):
			step := strings.TrimPrefix(strings.TrimPrefix(ge.Op, op), ": ")
			if step == "" {
				step = "Graph"
			}
			parts = append(parts, step+" refused it: "+ge.reason())
		case errors.As(c, &re):
			parts = append(parts, "it cannot be created from its fields: "+re.msg)
		default:
			parts = append(parts, strings.TrimPrefix(c.Error(), "exchange: "+op+": "))
		}
	}
	return strings.Join(parts, "; ")
}

// degradedMessage returns the JSON create of the degraded item of m,
// whose original bytes raw holds, and the parsedMessage that holds its
// one attachment, the original, unchanged:
//
//   - from the original's header, read leniently (readHeader): From, To,
//     Subject (at most maxDegradedSubject characters) and Message-ID
//     (when it is a msg-id) unless minimal, and Date;
//   - the sent date from the Date header or else m.InternalDate, the
//     received date from m.InternalDate (PidTagClientSubmitTime and
//     PidTagMessageDeliveryTime, see messageJSON), non-draft unless m is
//     a \Draft, and m's flags;
//   - a plain-text body that says the message could not be migrated as
//     it was (why) and that the original is attached;
//   - the original as a file attachment, message/rfc822, named after the
//     subject or "original.eml" (degradedName).
//
// It sends nothing: createParsed adds the watermark and sends it.
func degradedMessage(raw *rawCopy, m *migrate.Message, why string, minimal bool) (map[string]any, *parsedMessage) {
	orig := originalHeader(raw)
	subject := truncateRunes(decoded(orig, "Subject"), maxDegradedSubject)
	name := degradedName(subject)
	var h textproto.Header
	if !minimal {
		for _, k := range []string{"From", "To"} {
			if v := orig.Get(k); v != "" {
				h.AddRaw([]byte(k + ": " + v + "\r\n"))
			}
		}
		if subject != "" {
			h.AddRaw([]byte("Subject: " + subject + "\r\n"))
		}
		if id, err := mailHeader(orig).MessageID(); err == nil && id != "" && !strings.ContainsAny(id, " \t<>") {
			h.AddRaw([]byte("Message-Id: <" + id + ">\r\n"))
		}
	}
	if v := orig.Get("Date"); v != "" {
		h.AddRaw([]byte("Date: " + v + "\r\n"))
	}
	p := &parsedMessage{header: h, haveBody: true, atts: []*mimeAttachment{raw.attachment(name)}}
	p.body = "This message could not be migrated as it was: " + truncateRunes(why, maxDegradedWhy) + ".\r\n\r\n" +
		"The original message is attached unchanged: " + name + "\r\n"
	create := messageJSON(p, m)
	if _, ok := messageDate(h); !ok && !m.InternalDate.IsZero() {
		props, _ := create["singleValueExtendedProperties"].([]extendedProperty)
		create["singleValueExtendedProperties"] = append(props, extendedProperty{submitTimeProperty, systemTime(m.InternalDate)})
	}
	return create, p
}

// originalHeader reads the header of the original in raw as the parse
// does (an mbox "From " line skipped, stray lines dropped); what cannot
// be read is left out.
func originalHeader(raw *rawCopy) textproto.Header {
	br := bufio.NewReaderSize(io.NewSectionReader(raw.reader(), 0, raw.n), messageBuffer)
	if skipMboxFrom(br) != nil {
		return textproto.Header{}
	}
	h, _ := readHeader(br)
	return h
}

// degradedName is the name of the original's attachment: the subject,
// without the characters file systems refuse (\ / : * ? " < > | and
// control characters), at most maxDegradedName characters, and ".eml";
// "original.eml" when nothing is left.
func degradedName(subject string) string {
	s := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`\/:*?"<>|`, r) || isControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, subject)
	s = strings.Trim(strings.Join(strings.Fields(s), " "), ". ")
	s = strings.TrimRight(truncateRunes(s, maxDegradedName), ". ")
	if s == "" {
		return "original.eml"
	}
	return s + ".eml"
}

// truncateRunes returns s cut to at most n characters.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := 0; k < n; k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// rawCopy keeps the bytes of a message as Put reads them, unchanged, for
// the degraded item: in memory up to memLimit bytes (MaxImportSize: as
// much as importMime holds anyway), beyond that in a temporary file that
// close removes.
type rawCopy struct {
	memLimit int64
	mem      []byte
	f        *os.File
	n        int64 // bytes written
	err      error // the first write error
}

// newRawCopy returns an empty rawCopy for a message of about size bytes.
func newRawCopy(size int64) *rawCopy {
	c := &rawCopy{memLimit: MaxImportSize}
	if size > 0 && size <= c.memLimit {
		c.mem = make([]byte, 0, size)
	}
	return c
}

// rawBytes returns a rawCopy of b, which it shares: b must not change.
func rawBytes(b []byte) *rawCopy {
	return &rawCopy{memLimit: int64(len(b)), mem: b, n: int64(len(b))}
}

// Write implements io.Writer.
func (c *rawCopy) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.f == nil && c.n+int64(len(p)) <= c.memLimit {
		c.mem = append(c.mem, p...)
		c.n += int64(len(p))
		return len(p), nil
	}
	if c.f == nil {
		f, err := createSpool(".eml")
		if err != nil {
			c.err = err
			return 0, err
		}
		c.f = f
		if _, err := f.Write(c.mem); err != nil {
			c.err = err
			return 0, err
		}
		c.mem = nil
	}
	n, err := c.f.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// reader returns the bytes kept.
func (c *rawCopy) reader() io.ReaderAt {
	if c.f != nil {
		return c.f
	}
	return bytes.NewReader(c.mem)
}

// attachment returns the bytes kept as the message/rfc822 attachment
// name, read from memory or from c's file (which stays c's).
func (c *rawCopy) attachment(name string) *mimeAttachment {
	a := &mimeAttachment{name: name, contentType: "message/rfc822", size: c.n}
	switch {
	case c.f != nil:
		a.src = c.f
	case c.mem != nil:
		a.mem = c.mem
	default:
		a.mem = []byte{}
	}
	return a
}

// close removes the temporary file, if there is one.
func (c *rawCopy) close() {
	if c.f != nil {
		closeSpool(c.f)
		c.f = nil
	}
}
