package imapsrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// errTruncated marks a body literal cut short by a dropped connection.
var errTruncated = errors.New("message body truncated: connection lost")

// Fetch calls fn with each message of folder f whose UID is in uids, in
// ascending UID order, its body streamed straight from the connection.
// It opens the folder read-only (EXAMINE), checking its UIDVALIDITY (an
// error matching migrate.ErrUIDValidityChanged if it is not
// f.UIDValidity), unless the connection has it open, with that
// UIDVALIDITY, from a Fetch of about the last second: back-to-back calls
// on one folder, as the Engine makes them, share one EXAMINE, which costs
// a server more the larger the folder (see reuseOrExamine). It then sends UID FETCH <uids> (UID
// FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]) for up to
// Options.MaxUIDsPerFetch UIDs at a time, so \Seen is never set; the
// Message-ID is read from the body's header as it streams. The commands
// are pipelined: the next ones are sent while the bodies of the current
// one are still being read, as long as the bytes asked for and not yet
// handed to fn stay within Options.MaxBytesInFlight (one command is
// always allowed, whatever its size). Messages that no longer exist are
// left out, without an error, including those another client expunges
// while Fetch runs, which the server answers with a NIL body or with
// NO [EXPUNGEISSUED].
//
// Message.Size is the size of the body as the server sends it when that is
// larger than its RFC822.SIZE, so that a callback that budgets its memory
// by Size never reads more than Size bytes. A body over
// Options.MaxMessageSize is not handed over: its reads fail at once with
// an error matching ErrMessageTooLarge and migrate.ErrItem, naming the
// message, and Fetch skips it on the wire and goes on.
//
// Message.Body is valid only while fn runs; whatever fn leaves unread is
// discarded. A body cut short by a dropped connection fails its reads with
// an error (never a silent, short io.EOF); Fetch then reconnects, checks
// UIDVALIDITY (an error matching migrate.ErrUIDValidityChanged if it
// changed) and goes on with the first message fn has not accepted, that
// one included. If fn returns any other error, Fetch stops and returns it
// unchanged. Once ctx is done, fn is not called again: Fetch returns
// ctx's error, and a body being read fails its reads.
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
	est := newSizeEstimate(f)
	err := s.do(ctx, what, func() int { return delivered }, func(pc *pconn) error {
		if err := reuseOrExamine(pc, f.Name, &want); err != nil {
			return err
		}
		p := &pipeline{s: s, pc: pc, est: est, events: make(chan fetchEvent), quit: make(chan struct{}),
			br: bufio.NewReaderSize(nil, maxHeaderPeek)}
		// The UIDs still to do: those after the last one accepted.
		i, _ := slices.BinarySearch(todo, last+1)
		p.rest = todo[i:]
		for {
			if err := ctx.Err(); err != nil {
				// No new command once ctx is done: its socket is closed.
				p.abort()
				return err
			}
			p.fill()
			if len(p.queue) == 0 {
				return nil
			}
			ev := <-p.events
			if ev.msg == nil { // a command's end
				if ev.err != nil && !expungeIssued(ev.err) {
					p.abort()
					return fmt.Errorf("UID FETCH: %w", ev.err)
				}
				p.done(ev.c)
				// Whatever of the chunk is still missing no longer exists.
				if u := ev.c.uids[len(ev.c.uids)-1]; u > last {
					last = u
				}
				continue
			}
			var lit imap.LiteralReader
			info, err := readInfo(ev.msg, &lit)
			if err != nil {
				p.abort()
				return err
			}
			if info.UID <= last || !ev.c.wants(info.UID) {
				ev.c.ack <- struct{}{}
				continue // not asked for, or already accepted
			}
			if err := ctx.Err(); err != nil {
				// No callback once ctx is done, whatever is buffered.
				p.abort()
				return err
			}
			if lit == nil {
				// No body: nothing to hand over. A NIL body section means
				// the message has gone: another session expunged it after
				// this one opened the folder, and the server answers for
				// it so until it has told this session of the expunge
				// (Dovecot: "BODY[] NIL", then OK [EXPUNGEISSUED], RFC
				// 5530). It is left out, as one that no longer exists,
				// and is no failure. The next Fetch opens the folder
				// afresh: a NIL body is also what Dovecot answers on a
				// selection whose folder was deleted and created again.
				// A response without a body section is a flag update the
				// server sent unasked, which go-imap gave to this command
				// by its UID: no message either.
				pc.reuseUntil = time.Time{}
				s.opts.Logger.Debug("imapsrc: FETCH answered without a body; the message is left out as expunged",
					"source", s.String(), "folder", f.Name, "uid", info.UID)
				ev.c.ack <- struct{}{}
				continue
			}
			body := newBodyReader(lit)
			if lit.Size() > info.Size {
				// The body as sent is what fn may have to hold: a server
				// that declares a smaller RFC822.SIZE (or none before the
				// body) does not make fn read more than Size says.
				if info.Size > 0 {
					s.opts.Logger.Warn("imapsrc: the server sends a body larger than its RFC822.SIZE",
						"source", s.String(), "folder", f.Name, "uid", info.UID, "size", info.Size, "sent", lit.Size())
				}
				info.Size = lit.Size()
			}
			if info.Size > s.opts.MaxMessageSize {
				body.refused = migrate.ItemError(fmt.Errorf("imapsrc: UID %d of %q: %w: the server sends %d bytes, over the limit of %d (Options.MaxMessageSize)",
					info.UID, f.Name, ErrMessageTooLarge, info.Size, s.opts.MaxMessageSize))
			}
			est.observe(info.Size)
			p.delivered(ev.c)
			p.br.Reset(body)
			if info.MessageID == "" {
				info.MessageID = parseMessageID(peekHeader(p.br))
			}
			m := &migrate.Message{
				ID:          migrate.SourceID{Folder: f.Name, UIDValidity: want, UID: info.UID},
				MessageInfo: info,
				Body:        p.br,
			}
			err = fn(m)
			if body.err != nil && !errors.Is(body.err, io.EOF) {
				// The connection broke under fn: retry this message.
				p.abortAfterLiteral()
				return body.err
			}
			if err != nil {
				p.abort() // cheaper than reading the rest of the pipeline
				return &callbackError{err}
			}
			last = info.UID
			delivered++
			// Drain what fn left unread, so the next message can come.
			if err := drain(p.br, body); err != nil {
				p.abortAfterLiteral()
				return err
			}
			ev.c.ack <- struct{}{}
		}
	})
	return unwrapCallback(what, err)
}

// expungeIssued reports whether err is a NO [EXPUNGEISSUED] (RFC 5530
// section 3): the answer of a server that refuses a FETCH of messages
// another session expunged (RFC 2180 section 4.1.2) after sending what
// still exists. The messages it left out no longer exist; the others are
// whole.
func expungeIssued(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo && strings.EqualFold(string(ie.Code), "EXPUNGEISSUED")
}

// pipeline is the UID FETCH commands of one Fetch in flight on one
// connection.
//
// go-imap hands each FETCH response to the command whose UID set holds
// it, and its reader then waits until the body literal has been read. A
// server may answer pipelined commands back to back and send the tagged
// OK of the first only after the responses of the next (Dovecot does), so
// waiting for one command to end before reading the next would deadlock.
// Each command therefore has a goroutine that forwards its responses, one
// at a time, to a single channel read in wire order.
type pipeline struct {
	s        *Source
	pc       *pconn
	est      *sizeEstimate
	br       *bufio.Reader // the body given to fn, read ahead for its header
	rest     []uint32      // UIDs not yet asked for
	queue    []*chunk      // commands sent and not ended, oldest first
	inFlight int64         // estimated bytes asked for and not yet delivered

	events chan fetchEvent
	quit   chan struct{} // closed by abort
	wg     sync.WaitGroup
}

// fetchEvent is a response of a chunk's command, or its end (msg nil).
type fetchEvent struct {
	c   *chunk
	msg *imapclient.FetchMessageData
	err error
}

// chunk is one UID FETCH command of a pipeline.
type chunk struct {
	cmd  *imapclient.FetchCommand
	uids []uint32      // ascending
	per  int64         // estimated bytes per message
	left int64         // estimated bytes not yet delivered
	ack  chan struct{} // the message forwarded last is done with
}

func (c *chunk) wants(uid uint32) bool {
	_, ok := slices.BinarySearch(c.uids, uid)
	return ok
}

// maxQueue bounds the commands in flight whatever their size: enough to
// keep the connection busy, few enough to stop quickly.
const maxQueue = 4

// fill sends UID FETCH commands while the budget allows: always one when
// none is in flight, more while the estimated bytes in flight stay within
// Options.MaxBytesInFlight.
func (p *pipeline) fill() {
	limit := p.s.opts.MaxBytesInFlight
	for len(p.rest) > 0 && len(p.queue) < maxQueue {
		per := p.est.perMessage()
		n := min(len(p.rest), p.s.opts.MaxUIDsPerFetch, max(1, int(limit/2/per)))
		cost := int64(n) * per
		if len(p.queue) > 0 && p.inFlight+cost > limit {
			return
		}
		uids := p.rest[:n]
		p.rest = p.rest[n:]
		var set imap.UIDSet
		for _, u := range uids {
			set.AddNum(imap.UID(u))
		}
		cmd := p.pc.c.Fetch(set, &imap.FetchOptions{
			UID:          true,
			Flags:        true,
			InternalDate: true,
			RFC822Size:   true,
			// No BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]: it makes Dovecot
			// parse every header and nearly halves the rate; the
			// Message-ID is read from the start of the body instead.
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		c := &chunk{cmd: cmd, uids: uids, per: per, left: cost, ack: make(chan struct{}, 1)}
		p.queue = append(p.queue, c)
		p.inFlight += cost
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward passes c's responses to p.events, each once the previous one
// has been dealt with, then its end.
func (p *pipeline) forward(c *chunk) {
	defer p.wg.Done()
	for {
		msg := c.cmd.Next()
		if msg == nil {
			err := c.cmd.Close()
			select {
			case p.events <- fetchEvent{c: c, err: err}:
			case <-p.quit:
			}
			return
		}
		select {
		case p.events <- fetchEvent{c: c, msg: msg}:
		case <-p.quit:
			_ = c.cmd.Close()
			return
		}
		select {
		case <-c.ack:
		case <-p.quit:
			_ = c.cmd.Close()
			return
		}
	}
}

// delivered accounts for one message of c handed over.
func (p *pipeline) delivered(c *chunk) {
	d := min(c.per, c.left)
	c.left -= d
	p.inFlight -= d
}

// done removes a command that ended.
func (p *pipeline) done(c *chunk) {
	p.inFlight -= c.left
	c.left = 0
	if i := slices.Index(p.queue, c); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
	}
}

// abortAfterLiteral is abort after the body being read failed to read:
// see Source.abortAfterLiteral.
func (p *pipeline) abortAfterLiteral() {
	p.pc.raw.Close()
	p.pc.awaitReader()
	p.abort()
}

// abort ends the connection with every command in flight, in the order
// Source.abort explains: socket, then commands, then client.
func (p *pipeline) abort() {
	p.pc.dead.Store(true)
	p.pc.raw.Close()
	close(p.quit)
	p.wg.Wait()
	p.pc.c.Close()
}

// sizeEstimate estimates message sizes for the bytes-in-flight budget:
// Fetch is given UIDs, not sizes. It starts from the folder's average
// (Folder.Bytes / Folder.Messages) and follows the sizes seen.
type sizeEstimate struct {
	n, sum int64
}

// defaultMessageSize is the estimate when nothing is known yet.
const defaultMessageSize = 64 << 10

func newSizeEstimate(f migrate.Folder) *sizeEstimate {
	if f.Bytes > 0 && f.Messages > 0 {
		return &sizeEstimate{n: 1, sum: f.Bytes / int64(f.Messages)}
	}
	return &sizeEstimate{}
}

func (e *sizeEstimate) observe(size int64) {
	e.n++
	e.sum += size
}

func (e *sizeEstimate) perMessage() int64 {
	if e.n == 0 {
		return defaultMessageSize
	}
	return max(e.sum/e.n, 1)
}

// ErrMessageTooLarge marks the error a message's body fails to read with
// when the server sends more than Options.MaxMessageSize bytes of it. The
// error also matches migrate.ErrItem and names the message's UID and
// folder: that message is reported as failed, and Fetch goes on with the
// next one.
var ErrMessageTooLarge = errors.New("message too large")

// drain reads what is left of body, through br, to its end, so that the
// next response can come. A body refused as too large is skipped
// unbuffered.
func drain(br *bufio.Reader, body *bodyReader) error {
	if body.refused != nil {
		body.refused = nil
		_, err := io.Copy(io.Discard, body)
		return err
	}
	_, err := io.Copy(io.Discard, br)
	return err
}

// bodyReader reads a body literal and turns a short literal (the
// connection dropped) into an error instead of io.EOF. It remembers the
// first error.
type bodyReader struct {
	r    io.Reader
	left int64
	err  error
	// refused, if set, is returned by every Read, the literal left
	// unread: the body is too large to be handed over (drain skips it).
	refused error
}

func newBodyReader(lit imap.LiteralReader) *bodyReader {
	if lit == nil { // NIL body
		return &bodyReader{err: io.EOF}
	}
	return &bodyReader{r: lit, left: lit.Size()}
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.refused != nil {
		return 0, b.refused
	}
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
