package imapsrc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
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

// listDroppingAt runs list, killing the Dovecot session once the k-th
// message is listed, and returns what was listed, in the order it came.
func listDroppingAt(t *testing.T, srv *dovecottest.Server, k int, list func(fn func(migrate.MessageInfo) error) error) []migrate.MessageInfo {
	t.Helper()
	var got []migrate.MessageInfo
	err := list(func(m migrate.MessageInfo) error {
		got = append(got, m)
		if len(got) == k {
			require.Positive(t, srv.DropConnections(), "sessions dropped")
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, len(got), k, "listed")
	return got
}

// largeListing returns how many messages of longIDMessages a listing
// must hold for its answer, counting only the fraction share of them
// that is listed, to be twice what the socket buffers can hold
// (socketBuffers): the session killed early in the listing cannot have
// sent it all, so that the Source sees the drop in the middle of it.
func largeListing(t *testing.T, share float64) int {
	perMessage := len(longIDMessages(1)[0].Raw) // about the answer's size too
	return int(float64(2*socketBuffers(t)) / share / float64(perMessage))
}

// uidsOf returns the UIDs of infos, in order.
func uidsOf(infos []migrate.MessageInfo) []uint32 {
	uids := make([]uint32, len(infos))
	for i, m := range infos {
		uids[i] = m.UID
	}
	return uids
}

// assertListed checks that infos describe exactly msgs[uid-1] for the
// UIDs want, in that order.
func assertListed(t *testing.T, want []uint32, msgs []migratetest.FixtureMessage, infos []migrate.MessageInfo) {
	t.Helper()
	got := uidsOf(infos)
	if !slices.Equal(want, got) {
		i := 0
		for i < min(len(want), len(got)) && want[i] == got[i] {
			i++
		}
		require.FailNowf(t, "UIDs listed", "%d UIDs listed, want %d; the first difference at position %d: %v, want %v",
			len(got), len(want), i, got[i:min(i+5, len(got))], want[i:min(i+5, len(want))])
	}
	for _, m := range infos {
		fx := msgs[m.UID-1]
		if !assert.Equal(t, fx.MessageID(), m.MessageID, "UID %d: Message-ID", m.UID) ||
			!assert.Equal(t, int64(len(fx.Raw)), m.Size, "UID %d: size", m.UID) ||
			!assert.True(t, m.InternalDate.Equal(fx.InternalDate), "UID %d: internal date %v, want %v", m.UID, m.InternalDate, fx.InternalDate) ||
			!assert.Equal(t, migrate.ContainsFlag(fx.Flags, migrate.FlagSeen), m.HasFlag(migrate.FlagSeen), "UID %d: flags %v", m.UID, m.Flags) {
			return
		}
	}
}

// TestDropDuringList kills the Dovecot session early in a listing far
// larger than the socket buffers can hold: List must notice the drop,
// reconnect and go on after the last UID it delivered, so that every
// message is listed once, in order, with its metadata.
func TestDropDuringList(t *testing.T) {
	srv := startDovecot(t, dovecottest.LayoutCourier, nil)
	n := largeListing(t, 1)
	msgs := longIDMessages(n)
	writeMaildir(t, srv, "INBOX", msgs)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		DialContext: cappedDial})
	closeSrc(t, src)
	f := inbox(t, src)
	require.Equal(t, n, f.Messages, "messages in INBOX")
	var events atomic.Int32
	ctx := migrate.WithObserver(context.Background(), func(ev migrate.Event) {
		assert.Equal(t, migrate.EventReconnected, ev.Kind, "event")
		events.Add(1)
	})
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.List(ctx, f, fn)
	})
	assertListed(t, uidsUpTo(n), msgs, got)
	assert.GreaterOrEqual(t, src.Reconnects(), 1, "Reconnects: the drop was seen during List")
	assert.EqualValues(t, src.Reconnects(), events.Load(), "events, one per reconnect")
	t.Logf("listed %d messages (~%d MB) through a drop; reconnects: %d", n, n*len(msgs[0].Raw)>>20, src.Reconnects())
	folders(t, src) // and the Source goes on
}

// TestListCut cuts the connection at a given point of a listing: List
// reconnects and goes on after the last message it delivered, so that
// each is listed once, in order.
//
// Cut before the OK that ends the listing, List asks for "last+1:*",
// which a server answers with the highest UID even when it is lower
// (RFC 9051 section 6.4.9; Dovecot does): that message, listed already,
// must not come twice. (go-imap's client itself drops an answer outside
// the UIDs asked for, before List sees it.)
func TestListCut(t *testing.T) {
	const n = 12
	first := func(conn int) bool { return conn == 1 } // only the first connection is cut
	for _, tc := range []struct {
		name  string
		cutAt func(conn int, line []byte) int
	}{
		{"before the OK", before(" OK Fetch completed", false, first)},
		{"in a Message-ID literal", before("-4@mailferry.test>", true, first)}, // UID 5's
		{"before a Message-ID item", before("BODY[HEADER.FIELDS", true, first)},
		{"before a size item", before("RFC822.SIZE", true, first)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := bigFixture(n)
			srv := startDovecot(t, "", fx)
			p := startProxy(t, srv.Addr(), proxyOptions{cutAt: tc.cutAt})
			src := plain(p.addr, "alice", "secret")
			closeSrc(t, src)
			f := inbox(t, src)
			var got []migrate.MessageInfo
			require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error { got = append(got, m); return nil }))
			assertListed(t, uidsUpTo(n), fx.Folders[0].Messages, got)
			accepted, cut := p.connections()
			assert.Equal(t, 1, cut, "connections cut")
			assert.Equal(t, 2, accepted, "connections")
			assert.Equal(t, 1, src.Reconnects(), "Reconnects")
		})
	}
}

func TestListChanges(t *testing.T) {
	srv := startDovecot(t, dovecottest.LayoutCourier, nil)
	// Every message but each fifth changes: that listing too must be far
	// larger than the socket buffers.
	n := largeListing(t, 0.8)
	msgs := longIDMessages(n)
	writeMaildir(t, srv, "INBOX", msgs)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		DialContext: cappedDial})
	closeSrc(t, src)
	ctx := context.Background()
	f := inbox(t, src)
	require.NotZero(t, f.ModSeq, "INBOX has no ModSeq on Dovecot (CONDSTORE): %+v", f)
	// Nothing changed yet.
	calls := 0
	require.NoError(t, src.ListChanges(ctx, f, f.ModSeq, func(migrate.MessageInfo) error { calls++; return nil }), "no change")
	require.Zero(t, calls, "no change: calls")

	// Another client sets a keyword on those messages and adds one.
	c := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	var changed imap.UIDSet
	var want []uint32
	for u := 1; u <= n; u++ {
		if u%5 != 0 {
			changed.AddNum(imap.UID(u))
			want = append(want, uint32(u))
		}
	}
	require.NoError(t, c.Store(changed, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"Changed"}, Silent: true}, nil).Close())
	late := longIDMessages(n + 1)[n:]
	seed(t, srv.Addr(), "alice", "secret", &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Messages: late}}})
	msgs = append(msgs, late...)
	want = append(want, uint32(n+1))

	// Listed exactly once each, though the session dies early on.
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.ListChanges(ctx, f, f.ModSeq, func(m migrate.MessageInfo) error {
			if m.UID <= uint32(n) {
				assert.True(t, m.HasFlag("Changed"), "UID %d listed as changed without the keyword: %v", m.UID, m.Flags)
			}
			return fn(m)
		})
	})
	assertListed(t, want, msgs, got)
	assert.GreaterOrEqual(t, src.Reconnects(), 1, "Reconnects: the drop was seen during ListChanges")
	t.Logf("listed %d changes through a drop; reconnects: %d", len(got), src.Reconnects())
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
