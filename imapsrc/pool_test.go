package imapsrc_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// counter is an Options.DialContext that counts the connections open.
type counter struct {
	mu                sync.Mutex
	open, peak, total int
}

func (d *counter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.open++
	d.total++
	d.peak = max(d.peak, d.open)
	return &countedConn{Conn: c, d: d}, nil
}

func (d *counter) stats() (open, peak, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open, d.peak, d.total
}

type countedConn struct {
	net.Conn
	d    *counter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

func TestConnections(t *testing.T) {
	const conns, ops = 3, 6
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		Connections: conns, DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src)
	var mu sync.Mutex
	inside, peakInside := 0, 0
	all := make(chan struct{}) // closed when conns operations are in at once
	var wg sync.WaitGroup
	errs := make([]error, ops)
	counts := make([]int, ops)
	for i := range ops {
		wg.Go(func() {
			first := true
			errs[i] = src.List(context.Background(), f, func(migrate.MessageInfo) error {
				counts[i]++
				if !first {
					return nil
				}
				first = false
				mu.Lock()
				inside++
				peakInside = max(peakInside, inside)
				if inside == conns {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					return errors.New("the operations never ran side by side")
				}
				return nil
			})
			mu.Lock()
			inside--
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range ops {
		if errs[i] != nil || counts[i] != len(fx.Folders[0].Messages) {
			t.Errorf("List %d: %d messages, %v", i, counts[i], errs[i])
		}
	}
	_, peak, _ := d.stats()
	if peak != conns || peakInside != conns {
		t.Errorf("peak connections %d, peak operations at once %d; want %d", peak, peakInside, conns)
	}
}

func TestServerLimit(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	var d counter
	lim := imapsrc.NewServerLimit(1)
	newSrc := func() *imapsrc.Source {
		s := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
			ServerLimit: lim, DialContext: d.dial})
		closeSrc(t, s)
		return s
	}
	a, b := newSrc(), newSrc()
	ctx := context.Background()

	// A's idle connection gives way to B, and back.
	for _, s := range []*imapsrc.Source{a, b, a} {
		if _, err := s.Folders(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if open, peak, total := d.stats(); peak != 1 || total != 3 || open != 1 || lim.Open() != 1 {
		t.Errorf("open %d, peak %d, dialled %d, limit says %d open; want 1, 1, 3, 1", open, peak, total, lim.Open())
	}

	// While A is busy, B waits for the slot, as long as its context lets it.
	f := inbox(t, a)
	inList, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		first := true
		done <- a.List(ctx, f, func(migrate.MessageInfo) error {
			if first {
				first = false
				close(inList)
				<-release
			}
			return nil
		})
	}()
	<-inList
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := b.Folders(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("B while A holds the only slot: err = %v, want a deadline", err)
	}
	got := make(chan error)
	go func() {
		_, err := b.Folders(ctx)
		got <- err
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("B after A finished: %v", err)
	}

	// Many operations of both at once never exceed the limit.
	var wg sync.WaitGroup
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if err := s.List(ctx, f, func(migrate.MessageInfo) error { return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, peak, _ := d.stats(); peak != 1 {
		t.Errorf("peak connections %d with a limit of 1", peak)
	}
}

func TestReconnectEvents(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	var mu sync.Mutex
	var events []migrate.Event
	src.Observe(func(e migrate.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	if _, err := src.Folders(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The idle connection dies (a server restart, an idle timeout): the
	// next operation reopens it, and that counts.
	if srv.DropConnections() != 1 {
		t.Fatal("no session to drop")
	}
	if _, err := src.Folders(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if src.Reconnects() != 1 || len(events) != 1 || events[0].Kind != migrate.EventReconnected || events[0].Err == nil {
		t.Errorf("Reconnects %d, events %+v; want 1 reconnected event with its cause", src.Reconnects(), events)
	}
}

func TestListChanges(t *testing.T) {
	const n = 40
	fx := bigFixture(n)
	srv := startDovecot(t, dovecottest.LayoutCourier, fx)
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	ctx := context.Background()
	f := inbox(t, src)
	if f.ModSeq == 0 {
		t.Fatalf("INBOX has no ModSeq on Dovecot (CONDSTORE): %+v", f)
	}
	// Nothing changed yet.
	calls := 0
	if err := src.ListChanges(ctx, f, f.ModSeq, func(migrate.MessageInfo) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("no change: %d calls, %v", calls, err)
	}

	// Another client sets a keyword on every even message and adds one.
	c := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var even imap.UIDSet
	for u := 2; u <= n; u += 2 {
		even.AddNum(imap.UID(u))
	}
	if err := c.Store(even, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"Changed"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	late := migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Messages: bigFixture(1).Folders[0].Messages}}}
	seed(t, srv.Addr(), "alice", "secret", &late)

	// Listed exactly once each, though the session dies half-way.
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.ListChanges(ctx, f, f.ModSeq, func(m migrate.MessageInfo) error {
			if m.UID <= n && !m.HasFlag("Changed") {
				t.Errorf("UID %d listed as changed without the keyword: %v", m.UID, m.Flags)
			}
			if m.MessageID == "" || m.Size == 0 {
				t.Errorf("UID %d: %+v", m.UID, m)
			}
			return fn(m)
		})
	})
	var want []uint32
	for u := 2; u <= n; u += 2 {
		want = append(want, uint32(u))
	}
	if want = append(want, n+1); !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	t.Logf("reconnects: %d", src.Reconnects())
}

func TestListChangesWithoutCondstore(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", bigFixture(3))
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	err := src.ListChanges(context.Background(), f, 5, func(migrate.MessageInfo) error { return nil })
	if !errors.Is(err, migrate.ErrNoModSeq) || errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("err = %v, want ErrNoModSeq", err)
	}
}
