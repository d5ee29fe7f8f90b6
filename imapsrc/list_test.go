package imapsrc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestListMetadata(t *testing.T) {
	fx := migratetest.Sample()
	src := memSource(t, fx)
	var got []migrate.MessageInfo
	require.NoError(t, src.List(context.Background(), inbox(t, src), func(m migrate.MessageInfo) error { got = append(got, m); return nil }))
	want := fx.Folders[0].Messages
	require.Len(t, got, len(want))
	for i, m := range got {
		assert.Equal(t, uint32(i+1), m.UID, "message %d: UID", i)
		assert.Equal(t, want[i].MessageID(), m.MessageID, "message %d: Message-ID", i)
		assert.Equal(t, int64(len(want[i].Raw)), m.Size, "message %d: size", i)
		assert.True(t, m.InternalDate.Equal(want[i].InternalDate), "message %d: internal date %v, want %v", i, m.InternalDate, want[i].InternalDate)
		assert.True(t, migrate.SameFlags(m.Flags, want[i].Flags), "message %d: flags %v, want %v", i, m.Flags, want[i].Flags)
		assert.Regexp(t, `(?s)^<.*>$`, m.MessageID, "message %d: the Message-ID keeps its angle brackets", i)
	}
}

func TestUIDValidityChanged(t *testing.T) {
	src := memSource(t, bigFixture(2))
	f := inbox(t, src)
	f.UIDValidity++
	err := src.List(context.Background(), f, func(migrate.MessageInfo) error { return nil })
	require.ErrorIs(t, err, migrate.ErrUIDValidityChanged, "List")
	assert.Regexp(t, `^imapsrc: `, err.Error(), "List: the error has the package prefix")
	err = src.Fetch(context.Background(), f, []uint32{1}, func(*migrate.Message) error { return nil })
	assert.ErrorIs(t, err, migrate.ErrUIDValidityChanged, "Fetch")
}

// listDroppingAt runs list, killing the Dovecot session once when UID
// uid is listed, and returns the UIDs in the order they came.
func listDroppingAt(t *testing.T, srv *dovecottest.Server, uid uint32, list func(fn func(migrate.MessageInfo) error) error) []uint32 {
	t.Helper()
	var got []uint32
	dropped := false
	err := list(func(m migrate.MessageInfo) error {
		got = append(got, m.UID)
		if m.UID == uid && !dropped {
			dropped = true
			srv.DropConnections()
		}
		return nil
	})
	require.NoError(t, err)
	return got
}

func TestDropDuringList(t *testing.T) {
	const n = 40
	srv := startDovecot(t, dovecottest.LayoutCourier, bigFixture(n))
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.List(context.Background(), f, fn)
	})
	assert.Equal(t, uidsUpTo(n), got, "listed")
	// The next operation works whether the drop was noticed during List
	// or only afterwards (the whole listing may already have been in the
	// socket buffers when the session was killed: then the next operation
	// finds the idle connection dead and reopens it).
	folders(t, src)
	t.Logf("reconnects: %d", src.Reconnects())
}

func TestListChanges(t *testing.T) {
	const n = 40
	srv := startDovecot(t, dovecottest.LayoutCourier, bigFixture(n))
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	ctx := context.Background()
	f := inbox(t, src)
	require.NotZero(t, f.ModSeq, "INBOX has no ModSeq on Dovecot (CONDSTORE): %+v", f)
	// Nothing changed yet.
	calls := 0
	require.NoError(t, src.ListChanges(ctx, f, f.ModSeq, func(migrate.MessageInfo) error { calls++; return nil }), "no change")
	require.Zero(t, calls, "no change: calls")

	// Another client sets a keyword on every even message and adds one.
	c := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	var even imap.UIDSet
	var want []uint32
	for u := 2; u <= n; u += 2 {
		even.AddNum(imap.UID(u))
		want = append(want, uint32(u))
	}
	require.NoError(t, c.Store(even, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"Changed"}, Silent: true}, nil).Close())
	late := migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Messages: bigFixture(1).Folders[0].Messages}}}
	seed(t, srv.Addr(), "alice", "secret", &late)
	want = append(want, n+1)

	// Listed exactly once each, though the session dies half-way.
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.ListChanges(ctx, f, f.ModSeq, func(m migrate.MessageInfo) error {
			if m.UID <= n {
				assert.True(t, m.HasFlag("Changed"), "UID %d listed as changed without the keyword: %v", m.UID, m.Flags)
			}
			assert.NotEmpty(t, m.MessageID, "UID %d: Message-ID", m.UID)
			assert.NotZero(t, m.Size, "UID %d: size", m.UID)
			return fn(m)
		})
	})
	require.Equal(t, want, got, "listed")
	t.Logf("reconnects: %d", src.Reconnects())
}

func TestListChangesWithoutCondstore(t *testing.T) {
	src := memSource(t, bigFixture(3))
	f := inbox(t, src)
	err := src.ListChanges(context.Background(), f, 5, func(migrate.MessageInfo) error { return nil })
	assert.ErrorIs(t, err, migrate.ErrNoModSeq)
	assert.NotErrorIs(t, err, migrate.ErrMailbox)
}

func TestParseMessageID(t *testing.T) {
	for _, tc := range []struct{ name, hdr, want string }{
		{"plain", "Message-ID: <a@example.com>\r\n\r\n", "<a@example.com>"},
		{"header end without blank line", "Message-ID: <a@example.com>\r\n", "<a@example.com>"},
		{"last line without newline", "Subject: x\r\nMessage-ID: <a@example.com>", "<a@example.com>"},
		{"case", "MESSAGE-id:<a@example.com>\r\n", "<a@example.com>"},
		{"among others, LF only", "From: a@example.com\nSubject: hi\nMessage-Id: <b@example.com>\n\n", "<b@example.com>"},
		{"folded", "Message-ID:\r\n <folded@example.com>\r\nSubject: x\r\n", "<folded@example.com>"},
		{"comment", "Message-ID: <a@example.com> (sent by a robot)\r\n", "<a@example.com>"},
		{"first of two", "Message-ID: <1@example.com>\r\nMessage-ID: <2@example.com>\r\n", "<1@example.com>"},
		{"no brackets", "Message-ID:  bare@example.com \r\n", "bare@example.com"},
		{"unclosed bracket", "Message-ID: <open@example.com\r\n", "<open@example.com"},
		{"only in the body", "Subject: x\r\n\r\nMessage-ID: <body@example.com>\r\n", ""},
		{"no header at all", "\r\nMessage-ID: <body@example.com>\r\n", ""},
		{"space before the colon", "Message-ID : <sp@example.com>\r\n", "<sp@example.com>"},
		{"none", "Subject: x\r\n\r\n", ""},
		{"empty", "", ""},
		// Malformed lines before it neither hide it nor fail.
		{"mbox From line", "From alice@example.com Mon Jan  1 00:00:00 2024\r\nMessage-ID: <m@example.com>\r\n", "<m@example.com>"},
		{"line without colon", "garbage\r\nMessage-ID: <g@example.com>\r\n", "<g@example.com>"},
		{"leading continuation", " stray\r\nMessage-ID: <s@example.com>\r\n", "<s@example.com>"},
		{"malformed, none", "garbage\r\nSubject: x\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, imapsrc.ParseMessageID([]byte(tc.hdr)))
		})
	}
}

// TestParseMessageIDAgreesWithGoMessage holds imapsrc's fast Message-ID
// scan to go-message's reading of the same header (textproto.ReadHeader,
// read on past malformed lines) over many generated headers, well-formed
// and not.
func TestParseMessageIDAgreesWithGoMessage(t *testing.T) {
	lines := []string{
		"Subject: hello", "From: Alice <a@example.org>", "Message-ID: <a@example.org>",
		"Message-Id: <b@example.org> (comment)", "MESSAGE-ID:<c@example.org>", "Message-ID : <d@example.org>",
		"Message-ID:", " <folded@example.org>", "\tmore", "Message-ID: bare@example.org",
		"From alice@example.org Mon Jan  1 00:00:00 2024", "garbage without a colon", "",
		"X-Message-ID: <not@example.org>", "Message-IDs: <not@example.org>", "Message-ID: <open@example.org",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(lines[rng.IntN(len(lines))])
			if rng.IntN(4) == 0 {
				b.WriteString("\n")
			} else {
				b.WriteString("\r\n")
			}
		}
		hdr := b.String()
		if want, got := goMessageID(hdr), imapsrc.ParseMessageID([]byte(hdr)); got != want {
			t.Fatalf("header %d %q: Message-ID %q, go-message reads %q", i, hdr, got, want)
		}
	}
}

// goMessageID reads hdr's Message-ID with go-message, the way a lenient
// mail client would: a malformed line is skipped and reading goes on.
func goMessageID(hdr string) string {
	br := bufio.NewReader(strings.NewReader(hdr + "\r\n"))
	for {
		h, err := textproto.ReadHeader(br)
		if h.Has("Message-Id") {
			v := strings.TrimSpace(h.Get("Message-Id"))
			if i := strings.IndexByte(v, '<'); i >= 0 {
				if j := strings.IndexByte(v[i:], '>'); j >= 0 {
					return v[i : i+j+1]
				}
			}
			return v
		}
		if err == nil || errors.Is(err, io.EOF) {
			return ""
		}
	}
}
