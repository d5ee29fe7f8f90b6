package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// errTruncated marks a body literal cut short by a dropped connection.
var errTruncated = errors.New("message body truncated: connection lost")

// Fetch calls fn with each message of folder f whose UID is in uids, in
// ascending UID order, its body streamed straight from the connection.
// It opens the folder read-only and sends
// UID FETCH <uids> (UID FLAGS INTERNALDATE RFC822.SIZE
// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] BODY.PEEK[]) for
// Options.FetchChunk UIDs at a time, so \Seen is never set. Messages that
// no longer exist are left out.
//
// Message.Body is valid only while fn runs; whatever fn leaves unread is
// discarded. A body cut short by a dropped connection fails its reads with
// an error (never a silent, short io.EOF); Fetch then reconnects, checks
// UIDVALIDITY (an error matching migrate.ErrUIDValidityChanged if it
// changed) and goes on with the first message fn has not accepted, that
// one included. If fn returns any other error, Fetch stops and returns it
// unchanged.
func (s *Source) Fetch(ctx context.Context, f migrate.Folder, uids []uint32, fn func(*migrate.Message) error) error {
	todo := slices.Clone(uids)
	slices.Sort(todo)
	todo = slices.Compact(todo)
	if len(todo) > 0 && todo[0] == 0 {
		todo = todo[1:] // UID 0 names no message
	}
	if len(todo) == 0 {
		return nil
	}
	var last uint32 // last UID fn accepted
	delivered := 0
	want := f.UIDValidity
	what := fmt.Sprintf("fetch from %q", f.Name)
	err := s.do(ctx, what, func() int { return delivered }, func(c *imapclient.Client, _ *serverInfo) error {
		if _, err := examine(c, f.Name, &want); err != nil {
			return err
		}
		for {
			// The UIDs still to do: those after the last one accepted.
			i, _ := slices.BinarySearch(todo, last+1)
			rest := todo[i:]
			if len(rest) == 0 {
				return nil
			}
			chunk := rest[:min(len(rest), s.opts.FetchChunk)]
			var set imap.UIDSet
			for _, u := range chunk {
				set.AddNum(imap.UID(u))
			}
			cmd := c.Fetch(set, &imap.FetchOptions{
				UID:          true,
				Flags:        true,
				InternalDate: true,
				RFC822Size:   true,
				// The Message-ID section first: servers answer in the order
				// asked, and the metadata must precede the streamed body.
				BodySection: []*imap.FetchItemBodySection{messageIDSection, {Peek: true}},
			})
			for {
				msg := cmd.Next()
				if msg == nil {
					break
				}
				var lit imap.LiteralReader
				info, err := readInfo(msg, &lit)
				if err != nil {
					s.abort(c, cmd)
					return err
				}
				if info.UID <= last || !slices.Contains(chunk, info.UID) {
					continue // not asked for, or already accepted
				}
				body := newBodyReader(lit)
				m := &migrate.Message{
					ID:          migrate.SourceID{Folder: f.Name, UIDValidity: want, UID: info.UID},
					MessageInfo: info,
					Body:        body,
				}
				err = fn(m)
				if body.err != nil && !errors.Is(body.err, io.EOF) {
					// The connection broke under fn: retry this message.
					s.abort(c, cmd)
					return body.err
				}
				if err != nil {
					s.abort(c, cmd) // cheaper than reading the rest of the chunk
					return &callbackError{err}
				}
				last = info.UID
				delivered++
				// Drain what fn left unread, so the next message can come.
				if _, err := io.Copy(io.Discard, body); err != nil {
					s.abort(c, cmd)
					return err
				}
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("UID FETCH: %w", err)
			}
			// Whatever of the chunk is still missing no longer exists.
			if chunk[len(chunk)-1] > last {
				last = chunk[len(chunk)-1]
			}
		}
	})
	return unwrapCallback(what, err)
}

// bodyReader reads a body literal and turns a short literal (the
// connection dropped) into an error instead of io.EOF. It remembers the
// first error.
type bodyReader struct {
	r    io.Reader
	left int64
	err  error
}

func newBodyReader(lit imap.LiteralReader) *bodyReader {
	if lit == nil { // NIL body
		return &bodyReader{err: io.EOF}
	}
	return &bodyReader{r: lit, left: lit.Size()}
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		b.err = io.EOF
		// Let the literal reader see its end, so go-imap moves on.
		_, _ = b.r.Read(nil)
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = fmt.Errorf("%w (%d bytes missing)", errTruncated, b.left)
	}
	if err != nil && err != io.EOF {
		b.err = err
		return n, err
	}
	if err == io.EOF {
		b.err = io.EOF
	}
	return n, err
}
