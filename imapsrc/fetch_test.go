package imapsrc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestFetchDovecotBodiesAndSeen(t *testing.T) {
	fx := bigFixture(12)
	srv := startDovecot(t, "", fx)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret", MaxUIDsPerFetch: 5})
	closeSrc(t, src)
	f := inbox(t, src)
	uids := []uint32{12, 1, 5, 5, 40, 7} // unordered, duplicated, one missing
	var got []uint32
	err := src.Fetch(context.Background(), f, uids, func(m *migrate.Message) error {
		got = append(got, m.UID)
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err
		}
		want := fx.Folders[0].Messages[m.UID-1].Raw
		assert.True(t, bytes.Equal(want, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want))
		assert.Equal(t, int64(len(want)), m.Size, "UID %d: size", m.UID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 5, 7, 12}, got, "delivered")
	require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		wasSeen := migrate.ContainsFlag(fx.Folders[0].Messages[m.UID-1].Flags, migrate.FlagSeen)
		assert.Equal(t, wasSeen, m.HasFlag(migrate.FlagSeen), "UID %d: flags %v after Fetch", m.UID, m.Flags)
		return nil
	}))
}

// dropSession kills the Dovecot sessions serving the test and returns
// once they have exited: their connections are closed then, and what the
// server had not yet written to them is lost.
func dropSession(t *testing.T, srv *dovecottest.Server) {
	t.Helper()
	assert.Positive(t, srv.DropConnections(), "sessions dropped")
}

// TestDropDuringFetch kills the Dovecot session twice while Fetch is
// streaming: every message must still arrive exactly once, intact, with
// its Message-ID, and each drop be noticed and reported. Little is in
// flight, so that the messages after a drop cannot all be sitting in the
// socket already.
func TestDropDuringFetch(t *testing.T) {
	fetchThroughDrops(t, 30, &imapsrc.Options{MaxUIDsPerFetch: 4, MaxBytesInFlight: 8 << 10}, 6, 19)
}

// TestDropDuringPipelinedFetch is the same with several UID FETCH
// commands in flight when the session dies.
func TestDropDuringPipelinedFetch(t *testing.T) {
	fetchThroughDrops(t, 60, &imapsrc.Options{MaxUIDsPerFetch: 5, MaxBytesInFlight: 64 << 10}, 7, 33)
}

// fetchThroughDrops fetches n messages from a Dovecot with opts (its
// address and credentials filled in), killing the session once when each
// of dropAt is delivered.
func fetchThroughDrops(t *testing.T, n int, opts *imapsrc.Options, dropAt ...uint32) {
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	opts.Addr, opts.Security, opts.Username, opts.Password = srv.Addr(), imapsrc.Plaintext, "alice", "secret"
	src := imapsrc.New(opts)
	closeSrc(t, src)
	f := inbox(t, src)
	var events int
	ctx := migrate.WithObserver(context.Background(), func(ev migrate.Event) {
		assert.Equal(t, migrate.EventReconnected, ev.Kind, "event")
		events++
	})
	uids := uidsUpTo(n)
	count := map[uint32]int{}
	dropped := map[uint32]bool{}
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		if slices.Contains(dropAt, m.UID) && !dropped[m.UID] {
			dropped[m.UID] = true
			dropSession(t, srv)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err // the connection broke mid-body: Fetch retries it
		}
		want := fx.Folders[0].Messages[m.UID-1]
		assert.True(t, bytes.Equal(want.Raw, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want.Raw))
		assert.Equal(t, want.MessageID(), m.MessageID, "UID %d: Message-ID", m.UID)
		count[m.UID]++
		return nil
	})
	require.NoError(t, err, "Fetch")
	for _, u := range uids {
		assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
	}
	assert.GreaterOrEqual(t, src.Reconnects(), len(dropAt), "Reconnects")
	assert.Equal(t, src.Reconnects(), events, "events, one per reconnect")
}

// TestFetchCut cuts the connection at a given point of a Fetch: Fetch
// reconnects and goes on with the first message the callback has not
// accepted, so that each arrives once, whole, with its metadata. Cut
// inside a response before its body, the message must not be handed over
// without it (go-imap ends a response cut short as if it were complete).
func TestFetchCut(t *testing.T) {
	const n = 12
	first := func(conn int) bool { return conn == 1 } // only the first connection is cut
	for _, tc := range []struct {
		name  string
		cutAt func(conn int, line []byte) int
	}{
		{"before the OK", before(" OK Fetch completed", false, first)},
		{"in a body", before("padding line to make the body bigger 4\r\n", true, first)}, // UID 5's
		{"before a body item", before("BODY[]", true, first)},
		{"before a size item", before("RFC822.SIZE", true, first)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := bigFixture(n)
			msgs := fx.Folders[0].Messages
			srv := startDovecot(t, "", fx)
			p := startProxy(t, srv.Addr(), proxyOptions{cutAt: tc.cutAt})
			src := plain(p.addr, "alice", "secret")
			closeSrc(t, src)
			f := inbox(t, src)
			count := map[uint32]int{}
			err := src.Fetch(context.Background(), f, uidsUpTo(n), func(m *migrate.Message) error {
				body, err := io.ReadAll(m.Body)
				if err != nil {
					return err // the connection broke mid-body: Fetch retries it
				}
				want := msgs[m.UID-1]
				assert.True(t, bytes.Equal(want.Raw, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want.Raw))
				assert.Equal(t, want.MessageID(), m.MessageID, "UID %d: Message-ID", m.UID)
				assert.Equal(t, int64(len(want.Raw)), m.Size, "UID %d: size", m.UID)
				assert.True(t, m.InternalDate.Equal(want.InternalDate), "UID %d: internal date %v", m.UID, m.InternalDate)
				count[m.UID]++
				return nil
			})
			require.NoError(t, err, "Fetch")
			for _, u := range uidsUpTo(n) {
				assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
			}
			accepted, cut := p.connections()
			assert.Equal(t, 1, cut, "connections cut")
			assert.Equal(t, 2, accepted, "connections")
			assert.Equal(t, 1, src.Reconnects(), "Reconnects")
		})
	}
}

// headerOf returns a message whose header is lines of filler of about
// size bytes, with field (a whole line, its end included) beginning at
// offset at of the message (or after the filler when at is negative),
// then a short body. eol is each line's end: "\r\n", or "\n" for a
// message stored with bare LFs.
func headerOf(size, at int, field, eol string) []byte {
	var h bytes.Buffer
	placed := at < 0
	for i := 0; h.Len() < size; i++ {
		if !placed && h.Len() == at {
			h.WriteString(field)
			placed = true
			continue
		}
		line := fmt.Sprintf("X-Filler-%05d: %s", i, strings.Repeat("abcdefghij", 6)) + eol
		if !placed && h.Len()+len(line)+len("X: \r\n") > at {
			// A line that ends exactly where the field begins.
			line = "X: " + strings.Repeat("y", at-h.Len()-len("X: ")-len(eol)) + eol
		}
		h.WriteString(line)
	}
	if at < 0 {
		h.WriteString(field)
	}
	h.WriteString("Subject: a long header" + eol + eol + "The body." + eol + "Second line." + eol)
	return h.Bytes()
}

// TestFetchLongHeader: a header longer than the 64 KB that Fetch reads
// ahead for the Message-ID. The body is handed over whole, byte for byte,
// in every case. Fetch finds a Message-ID within the first 64 KB, not one
// beyond it (the documented bound), and never a Message-ID cut short by
// the bound; List, which asks the server for the field alone, finds them
// all.
func TestFetchLongHeader(t *testing.T) {
	peek := imapsrc.MaxHeaderPeek
	field := func(id string) string { return "Message-ID: <" + id + "@mailferry.test>\r\n" }
	msgs := []struct {
		name, id string
		raw      []byte
		fetchID  string // the Message-ID Fetch finds
	}{
		{"first of 100 KB", "first", headerOf(100<<10, 0, field("first"), "\r\n"), "<first@mailferry.test>"},
		{"just within the bound", "within", headerOf(100<<10, peek-len(field("within")), field("within"), "\r\n"), "<within@mailferry.test>"},
		{"across the bound", "across", headerOf(100<<10, peek-20, field("across"), "\r\n"), ""},
		{"beyond the bound", "beyond", headerOf(70<<10, -1, field("beyond"), "\r\n"), ""},
	}
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for _, m := range msgs {
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{Raw: m.raw,
			InternalDate: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)})
	}
	srv := startDovecot(t, "", fx)
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	var got []uint32
	err := src.Fetch(context.Background(), f, uidsUpTo(len(msgs)), func(m *migrate.Message) error {
		got = append(got, m.UID)
		want := msgs[m.UID-1]
		body, err := io.ReadAll(m.Body)
		require.NoError(t, err, "%s: body", want.name)
		assert.True(t, bytes.Equal(want.raw, body), "%s: body differs (%d bytes, want %d)", want.name, len(body), len(want.raw))
		assert.Equal(t, int64(len(want.raw)), m.Size, "%s: size", want.name)
		assert.Equal(t, want.fetchID, m.MessageID, "%s: Message-ID from Fetch", want.name)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, uidsUpTo(len(msgs)), got, "fetched")
	var listed []string
	require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		listed = append(listed, m.MessageID)
		return nil
	}))
	var all []string
	for _, m := range msgs {
		all = append(all, "<"+m.id+"@mailferry.test>")
	}
	assert.Equal(t, all, listed, "Message-IDs from List")
}

// TestFetchBareLF: messages stored with bare LF line endings, one with a
// short header and one with a header of 20 KB (read ahead in more than
// one step), the Message-ID last. Fetch finds the Message-ID and hands
// over the body byte for byte as the server sends it: Dovecot and go-imap's
// in-memory server send CRLFs (the body is then what a bare client reads
// of it), a server that sends the bare LFs as stored (here a fake one)
// sends them; and List agrees on the Message-ID.
func TestFetchBareLF(t *testing.T) {
	field := func(id string) string { return "Message-ID: <" + id + "@mailferry.test>\n" }
	raws := [][]byte{
		[]byte("From: Carol <carol@example.org>\nSubject: bare LF\n" + field("short") + "\nThe body.\nSecond line.\n"),
		headerOf(20<<10, -1, field("long"), "\n"),
	}
	ids := []string{"<short@mailferry.test>", "<long@mailferry.test>"}
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for _, raw := range raws {
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{Raw: raw,
			InternalDate: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)})
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (addr string, sent func(uid uint32) []byte)
	}{
		{"memserver", func(t *testing.T) (string, func(uint32) []byte) {
			addr := startMem(t, "alice", "secret")
			seed(t, addr, "alice", "secret", fx)
			return addr, func(uid uint32) []byte { return bareBody(t, addr, uid) }
		}},
		{"dovecot", func(t *testing.T) (string, func(uint32) []byte) {
			srv := startDovecot(t, "", nil)
			writeMaildir(t, srv, "INBOX", fx.Folders[0].Messages) // the files keep their bare LFs
			return srv.Addr(), func(uid uint32) []byte { return bareBody(t, srv.Addr(), uid) }
		}},
		{"as stored", func(t *testing.T) (string, func(uint32) []byte) {
			h := startHostile(t, fx)
			var msgs []fakeMessage
			for i, raw := range raws {
				msgs = append(msgs, fakeMessage{uid: imap.UID(i + 1), declared: int64(len(raw)), sent: int64(len(raw)), head: string(raw)})
			}
			h.serveMessages(msgs)
			return h.addr, func(uid uint32) []byte {
				require.Equal(t, raws[uid-1], bareBody(t, h.addr, uid), "UID %d: the fake server's body", uid)
				return raws[uid-1]
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, sent := tc.start(t)
			src := plain(addr, "alice", "secret")
			closeSrc(t, src)
			f := inbox(t, src)
			var got []uint32
			err := src.Fetch(context.Background(), f, uidsUpTo(len(raws)), func(m *migrate.Message) error {
				got = append(got, m.UID)
				body, err := io.ReadAll(m.Body)
				require.NoError(t, err, "UID %d: body", m.UID)
				want := sent(m.UID)
				assert.True(t, bytes.Equal(want, body), "UID %d: body differs from what the server sends (%d bytes, want %d)", m.UID, len(body), len(want))
				assert.Equal(t, int64(len(want)), m.Size, "UID %d: size", m.UID)
				assert.Equal(t, ids[m.UID-1], m.MessageID, "UID %d: Message-ID from Fetch", m.UID)
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, []uint32{1, 2}, got, "fetched")
			var listed []string
			require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error {
				listed = append(listed, m.MessageID)
				return nil
			}))
			assert.Equal(t, ids, listed, "Message-IDs from List")
		})
	}
}

// bareBody returns the body of uid in alice's INBOX on the server at
// addr as go-imap reads it, without the Source.
func bareBody(t *testing.T, addr string, uid uint32) []byte {
	t.Helper()
	c := imapsrctest.Client(t, addr, "alice", "secret")
	_, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	return msgs[0].FindBodySection(&imap.FetchItemBodySection{})
}

// TestFetchLargerThanInFlight: a message far larger than
// Options.MaxBytesInFlight, in the middle of a folder, read by a consumer
// that works as the Engine does: bodies that fit its own budget of bytes
// are read into memory and handed to Puts that run side by side and
// hold them; a body larger than the budget waits for the Puts before it
// to finish, then streams straight into a lone Put. Here the Puts before
// the large message hold their bodies until it has come. There is no
// deadlock, the large message arrives whole, every message once, and
// the Source does not hold the large body (what Fetch allocates stays
// far below its size).
func TestFetchLargerThanInFlight(t *testing.T) {
	const (
		n        = 12
		bigUID   = 5
		bigSize  = 8 << 20
		budget   = 64 << 10 // the consumer's bytes in memory, and the Source's in flight
		maxPuts  = 4
		guardFor = 2 * time.Minute // a deadlock guard, never reached when all is well
	)
	msgs := bigFixture(n).Folders[0].Messages
	var big bytes.Buffer
	big.WriteString("Message-ID: <big@mailferry.test>\r\nSubject: large\r\n\r\n")
	for i := 0; big.Len() < bigSize; i++ {
		fmt.Fprintf(&big, "line %07d of a message larger than the bytes in flight\r\n", i)
	}
	msgs[bigUID-1].Raw = big.Bytes()
	srv := startDovecot(t, "", nil)
	writeMaildir(t, srv, "INBOX", msgs)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		MaxBytesInFlight: budget, MaxUIDsPerFetch: 4})
	closeSrc(t, src)
	f := inbox(t, src)
	require.Greater(t, f.Bytes, int64(bigSize), "folder size")

	ctx := context.Background()
	mem := semaphore.NewWeighted(budget)    // bytes of bodies held
	slots := semaphore.NewWeighted(maxPuts) // Puts at once
	bigCame := make(chan struct{})          // the Puts before it hold their bodies until then
	var puts sync.WaitGroup
	var mu sync.Mutex
	count := map[uint32]int{}
	held := 0       // Puts holding a body
	heldAtBig := -1 // how many when the large message came
	put := func(uid uint32, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		assert.True(t, bytes.Equal(msgs[uid-1].Raw, body), "UID %d: body differs (%d bytes, want %d)", uid, len(body), len(msgs[uid-1].Raw))
		count[uid]++
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() {
		done <- src.Fetch(ctx, f, uidsUpTo(n), func(m *migrate.Message) error {
			if m.Size > budget {
				mu.Lock()
				heldAtBig = held
				mu.Unlock()
				close(bigCame)
				// All of the budget: the Puts before it finish first.
				if err := mem.Acquire(ctx, budget); err != nil {
					return err
				}
				defer mem.Release(budget)
				if err := slots.Acquire(ctx, 1); err != nil {
					return err
				}
				defer slots.Release(1)
				// A lone Put reads the body from the source as it goes.
				h := sha256.New()
				k, err := io.Copy(h, m.Body)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				assert.EqualValues(t, len(msgs[m.UID-1].Raw), k, "UID %d: bytes streamed", m.UID)
				assert.Equal(t, sha256.Sum256(msgs[m.UID-1].Raw), [32]byte(h.Sum(nil)), "UID %d: body streamed", m.UID)
				count[m.UID]++
				return nil
			}
			if err := mem.Acquire(ctx, m.Size); err != nil {
				return err
			}
			body, err := io.ReadAll(m.Body)
			if err != nil {
				mem.Release(m.Size)
				return err
			}
			if err := slots.Acquire(ctx, 1); err != nil {
				return err
			}
			mu.Lock()
			held++
			mu.Unlock()
			puts.Go(func() {
				defer slots.Release(1)
				defer mem.Release(m.Size)
				<-bigCame
				put(m.UID, body)
				mu.Lock()
				held--
				mu.Unlock()
			})
			return nil
		})
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "Fetch")
	case <-time.After(guardFor):
		t.Fatal("Fetch deadlocked with a message larger than the bytes in flight")
	}
	puts.Wait()
	runtime.ReadMemStats(&after)
	for _, u := range uidsUpTo(n) {
		assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
	}
	assert.Equal(t, bigUID-1, heldAtBig, "Puts holding their bodies when the large message came")
	// Not a measure of memory in use: how much was allocated while an
	// 8 MB body went by, to tell streaming it from holding it.
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(bigSize/2), "Fetch allocated %d KB for a %d MB body", allocated>>10, bigSize>>20)
	t.Logf("allocated %d KB while fetching %d messages, one of %d MB", allocated>>10, n, bigSize>>20)
}
