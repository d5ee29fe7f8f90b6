package imapsrc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// hostile is go-imap's in-memory server (one user, alice/secret) whose
// sessions a test makes misbehave: refuse STATUS for some folders, answer
// UID SEARCH with a set of its choosing, or answer FETCH itself.
type hostile struct {
	addr string

	mu       sync.Mutex
	statusNo map[string]bool // STATUS of these folders answers NO
	// search, if set, is the answer to every SEARCH.
	search imap.NumSet
	// fetch, if set, answers every FETCH in place of the server.
	fetch func(w *imapserver.FetchWriter, uids imap.UIDSet, opts *imap.FetchOptions) error
}

// serveMessages makes every FETCH answer with msgs instead of the
// server's own messages.
func (h *hostile) serveMessages(msgs []fakeMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetch = func(w *imapserver.FetchWriter, uids imap.UIDSet, opts *imap.FetchOptions) error {
		return writeFetch(w, uids, opts, msgs)
	}
}

func startHostile(t *testing.T, fx *migratetest.Fixture) *hostile {
	t.Helper()
	h := &hostile{statusNo: map[string]bool{}}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice", "secret")
	require.NoError(t, u.Create("INBOX", nil))
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &hostileSession{memSession: mem.NewSession().(memSession), h: h}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.addr = ln.Addr().String()
	if fx != nil {
		seed(t, h.addr, "alice", "secret", fx)
	}
	return h
}

// memSession is what an imapmemserver session implements.
type memSession interface {
	imapserver.Session
	imapserver.SessionNamespace
	imapserver.SessionMove
}

type hostileSession struct {
	memSession
	h *hostile
}

func (s *hostileSession) Status(mailbox string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	s.h.mu.Lock()
	no := s.h.statusNo[mailbox]
	s.h.mu.Unlock()
	if no {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Mailbox doesn't exist: " + mailbox}
	}
	return s.memSession.Status(mailbox, opts)
}

func (s *hostileSession) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, opts *imap.SearchOptions) (*imap.SearchData, error) {
	s.h.mu.Lock()
	set := s.h.search
	s.h.mu.Unlock()
	if set != nil {
		return &imap.SearchData{All: set}, nil
	}
	return s.memSession.Search(kind, criteria, opts)
}

func (s *hostileSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) error {
	s.h.mu.Lock()
	fetch := s.h.fetch
	s.h.mu.Unlock()
	uids, ok := numSet.(imap.UIDSet)
	if fetch == nil || !ok {
		return s.memSession.Fetch(w, numSet, opts)
	}
	return fetch(w, uids, opts)
}

// fakeMessage is a FETCH answer a hostile server makes up: the
// RFC822.SIZE it declares, and the size and start of the literal it sends
// for the section asked for (the rest is filler).
type fakeMessage struct {
	uid      imap.UID
	declared int64
	sent     int64
	head     string
}

// writeFetch answers a UID FETCH with msgs, those in uids, in order.
func writeFetch(w *imapserver.FetchWriter, uids imap.UIDSet, opts *imap.FetchOptions, msgs []fakeMessage) error {
	for i, m := range msgs {
		if !uids.Contains(m.uid) && !(uids.Dynamic() && m.uid >= uids[0].Start) {
			continue
		}
		mw := w.CreateMessage(uint32(i + 1))
		mw.WriteUID(m.uid)
		mw.WriteFlags(nil)
		mw.WriteInternalDate(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
		mw.WriteRFC822Size(m.declared)
		for _, sec := range opts.BodySection {
			wc := mw.WriteBodySection(sec, m.sent)
			if err := writeFiller(wc, m.head, m.sent); err != nil {
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
		}
		if err := mw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// writeFiller writes head, then lines of filler up to n bytes in all.
func writeFiller(w io.Writer, head string, n int64) error {
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	line := bytes.Repeat([]byte("X-Filler: 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr\r\n"), 512)
	for left := n - int64(len(head)); left > 0; {
		k := min(left, int64(len(line)))
		if _, err := w.Write(line[:k]); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// TestFetchBodyLargerThanDeclared: a server that declares a small
// RFC822.SIZE and sends a larger body makes Message.Size the size sent,
// so that a callback that budgets by Size never reads more; a body over
// Options.MaxMessageSize is refused for that message alone, with an item
// error naming it, and Fetch goes on with the next one on the same
// connection.
func TestFetchBodyLargerThanDeclared(t *testing.T) {
	h := startHostile(t, bigFixture(3))
	msgs := []fakeMessage{
		{uid: 1, declared: 100, sent: 300 << 10, head: "Message-ID: <one@example.org>\r\n"},
		{uid: 2, declared: 100, sent: 3 << 20, head: "Message-ID: <two@example.org>\r\n"},
		{uid: 3, declared: 4000, sent: 4000, head: "Message-ID: <three@example.org>\r\n"},
	}
	src := imapsrc.New(&imapsrc.Options{Addr: h.addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		MaxMessageSize: 1 << 20})
	closeSrc(t, src)
	f := inbox(t, src)
	h.serveMessages(msgs)
	var got []uint32
	err := src.Fetch(context.Background(), f, []uint32{1, 2, 3}, func(m *migrate.Message) error {
		got = append(got, m.UID)
		body, err := io.ReadAll(m.Body)
		switch m.UID {
		case 2:
			require.Error(t, err, "UID 2: a body over MaxMessageSize is read")
			assert.ErrorIs(t, err, imapsrc.ErrMessageTooLarge)
			assert.ErrorIs(t, err, migrate.ErrItem)
			assert.NotErrorIs(t, err, migrate.ErrMailbox)
			assert.Contains(t, err.Error(), `UID 2 of "INBOX"`)
			assert.Empty(t, body, "UID 2: bytes handed over")
			return nil
		default:
			require.NoError(t, err, "UID %d", m.UID)
		}
		assert.LessOrEqual(t, int64(len(body)), m.Size, "UID %d: more read than Message.Size says", m.UID)
		assert.EqualValues(t, msgs[m.UID-1].sent, len(body), "UID %d: body", m.UID)
		assert.Equal(t, strings.TrimSpace(strings.TrimPrefix(msgs[m.UID-1].head, "Message-ID:")), m.MessageID, "UID %d", m.UID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 2, 3}, got, "delivered")
	assert.Zero(t, src.Reconnects(), "Reconnects: the refused body was skipped, not the connection")
}

// TestListHugeMessageIDLiteral: a server that answers BODY.PEEK[HEADER.FIELDS
// (MESSAGE-ID)] with a literal of many megabytes does not make List hold
// it: at most 64 KB of it is kept and the rest skipped, and the listing
// goes on.
func TestListHugeMessageIDLiteral(t *testing.T) {
	h := startHostile(t, bigFixture(2))
	const huge = 96 << 20
	msgs := []fakeMessage{
		{uid: 1, declared: 1000, sent: huge, head: "Message-ID: <huge@example.org>\r\n"},
		{uid: 2, declared: 1000, sent: 40, head: "Message-ID: <small@example.org>\r\n\r\n"},
	}
	src := plain(h.addr, "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	h.serveMessages(msgs)
	var got []migrate.MessageInfo
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := src.List(context.Background(), f, func(m migrate.MessageInfo) error { got = append(got, m); return nil })
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "<huge@example.org>", got[0].MessageID)
	assert.Equal(t, "<small@example.org>", got[1].MessageID)
	// Not a measure of speed or of memory in use: how much List allocated
	// while a 96 MB literal went by, to tell holding it from skipping it.
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(huge/3), "List allocated %d MB for a %d MB literal", allocated>>20, huge>>20)
}

// fakeIMAP is a tiny IMAP server on a loopback port that speaks just
// enough IMAP4rev1 for a Source to log in and EXAMINE a folder of
// messages messages, and answers UID SEARCH with what search returns (the
// untagged response lines, without CRLF).
func fakeIMAP(t *testing.T, messages int, search func(tag string) []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(c, messages, search)
		}
	}()
	return ln.Addr().String()
}

func serveFake(c net.Conn, messages int, search func(tag string) []string) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	send := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	const caps = "IMAP4rev1 ESEARCH LITERAL+"
	if !send("* OK [CAPABILITY " + caps + "] fake ready") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, cmd, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb := strings.ToUpper(cmd)
		var ok bool
		switch {
		case strings.HasPrefix(verb, "CAPABILITY"):
			ok = send("* CAPABILITY "+caps, tag+" OK done")
		case strings.HasPrefix(verb, "LOGIN"):
			ok = send(tag + " OK [CAPABILITY " + caps + "] logged in")
		case strings.HasPrefix(verb, "EXAMINE"), strings.HasPrefix(verb, "SELECT"):
			ok = send("* FLAGS (\\Seen)", fmt.Sprintf("* %d EXISTS", messages), "* OK [UIDVALIDITY 7] ok",
				fmt.Sprintf("* OK [UIDNEXT %d] ok", messages+1), tag+" OK [READ-ONLY] done")
		case strings.HasPrefix(verb, "UID SEARCH"):
			ok = send(append(search(tag), tag+" OK done")...)
		case strings.HasPrefix(verb, "LOGOUT"):
			send("* BYE", tag+" OK done")
			return
		default:
			ok = send(tag + " OK done")
		}
		if !ok {
			return
		}
	}
}

// TestUIDsImplausibleSearch: a UID SEARCH answered with far more UIDs
// than the folder holds (ESEARCH's "ALL 1:4294967295") fails that folder
// with an error that names it, without expanding the set, and the Source
// goes on.
func TestUIDsImplausibleSearch(t *testing.T) {
	for _, tc := range []struct{ name, set string }{
		{"all UIDs", "1:4294967295"},
		{"twenty million", "1:20000000"},
		{"many ranges", "1:3,100:30000,50000:60000"},
		// go-imap itself refuses an open-ended "1:*" as a protocol error.
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			answer := tc.set
			addr := fakeIMAP(t, 3, func(tag string) []string {
				mu.Lock()
				defer mu.Unlock()
				return []string{`* ESEARCH (TAG "` + tag + `") UID ALL ` + answer}
			})
			src := plain(addr, "alice", "secret")
			closeSrc(t, src)
			f := migrate.Folder{Name: "INBOX", Path: []string{"INBOX"}, UIDValidity: 7, Messages: 3, Bytes: -1}
			uids, err := src.UIDs(context.Background(), f)
			require.Error(t, err, "UIDs: %d UIDs", len(uids))
			assert.ErrorIs(t, err, imapsrc.ErrBadResponse)
			assert.NotErrorIs(t, err, migrate.ErrMailbox)
			assert.NotErrorIs(t, err, migrate.ErrTransient)
			assert.Contains(t, err.Error(), `"INBOX"`, "the error names the folder")
			assert.Nil(t, uids)

			// A plausible answer still works, on the same Source.
			mu.Lock()
			answer = "1:2,3"
			mu.Unlock()
			uids, err = src.UIDs(context.Background(), f)
			require.NoError(t, err)
			assert.Equal(t, []uint32{1, 2, 3}, uids)
			assert.Zero(t, src.Reconnects(), "Reconnects")
		})
	}
}

// TestFolderStatusRefused: a folder whose STATUS the server refuses (it
// was deleted between LIST and STATUS) fails alone: Folders lists it with
// Err set, and a migration reports it as failed with the server's reason
// while every other folder is copied.
func TestFolderStatusRefused(t *testing.T) {
	fx := migratetest.Sample()
	h := startHostile(t, fx)
	h.mu.Lock()
	h.statusNo["Projects/2024"] = true
	h.mu.Unlock()
	src := plain(h.addr, "alice", "secret")
	closeSrc(t, src)
	fs := folders(t, src)
	var doomed *migrate.Folder
	for i := range fs {
		if fs[i].Name == "Projects/2024" {
			doomed = &fs[i]
		} else {
			assert.NoError(t, fs[i].Err, "folder %s", fs[i].Name)
		}
	}
	require.NotNil(t, doomed, "the folder whose STATUS failed is not listed: %+v", fs)
	require.Error(t, doomed.Err)
	assert.ErrorIs(t, doomed.Err, imapsrc.ErrNoFolder)
	assert.Contains(t, doomed.Err.Error(), "Mailbox doesn't exist")
	assert.Contains(t, doomed.Err.Error(), `"Projects/2024"`)

	sink := migratetest.NewSink()
	rep := migrate.NewEngine(nil).Migrate(context.Background(), migrate.Job{Mailbox: "alice", Source: src, Sink: sink})
	assert.Equal(t, migrate.StatusCompletedWithErrors, rep.Status, "status: %v", rep.Err)
	var failed []string
	copied := 0
	for _, fr := range rep.Folders {
		if fr.Err != nil {
			failed = append(failed, fr.Source)
			assert.Contains(t, fr.Error, "Mailbox doesn't exist", "folder %s: reason", fr.Source)
		}
		copied += fr.Copied
	}
	assert.Equal(t, []string{"Projects/2024"}, failed, "failed folders")
	want := 0
	for _, ff := range fx.Folders {
		if strings.Join(ff.Path, "/") != "Projects/2024" {
			want += len(ff.Messages)
		}
	}
	assert.Equal(t, want, copied, "messages copied from the other folders")

	// Probe does not stop at it either.
	res, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: h.addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret"})
	require.NoError(t, err)
	assert.Equal(t, want, res.Messages, fmt.Sprintf("probe: %+v", res.Folders))
}

// TestListMessageIDAcrossBound: of a BODY[HEADER.FIELDS (MESSAGE-ID)]
// answer longer than the 64 KB List keeps, a Message-ID field cut by the
// bound is not taken for a whole one, while one within it is found.
func TestListMessageIDAcrossBound(t *testing.T) {
	h := startHostile(t, bigFixture(2))
	peek := imapsrc.MaxHeaderPeek
	field := func(id string) string { return "Message-ID: <" + id + "@example.org>\r\n" }
	// The answers' starts: filler lines, then the field; more filler follows.
	within := string(headerOf(peek, peek-len(field("within")), field("within"), "\r\n"))
	across := string(headerOf(peek, peek-20, field("across"), "\r\n"))
	msgs := []fakeMessage{
		{uid: 1, declared: 1000, sent: int64(len(within)) + 1<<20, head: within[:strings.Index(within, "Subject:")]},
		{uid: 2, declared: 1000, sent: int64(len(across)) + 1<<20, head: across[:strings.Index(across, "Subject:")]},
	}
	src := plain(h.addr, "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	h.serveMessages(msgs)
	var got []string
	require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error { got = append(got, m.MessageID); return nil }))
	assert.Equal(t, []string{"<within@example.org>", ""}, got, "Message-IDs")
}
