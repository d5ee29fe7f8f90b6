package imapsrc_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func plain(addr, user, pass string) *imapsrc.Source {
	return imapsrc.New(&imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: user, Password: pass})
}

func closeSrc(t testing.TB, s *imapsrc.Source) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func TestConformanceDovecot(t *testing.T) {
	for _, tc := range []struct{ name, layout, user, pass, authz string }{
		{"default", dovecottest.LayoutDefault, "alice", "secret", ""},
		{"courier", dovecottest.LayoutCourier, "alice", "secret", ""},
		{"master-user", dovecottest.LayoutDefault, "alice*admin", "adminpw", ""},
		{"sasl-authzid", dovecottest.LayoutCourier, "admin", "adminpw", "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := migratetest.Sample()
			srv := startDovecot(t, tc.layout, fx)
			src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext,
				Username: tc.user, Password: tc.pass, AuthzID: tc.authz, FetchChunk: 2})
			closeSrc(t, src)
			migratetest.TestSource(t, src, fx)
		})
	}
}

func TestConformanceMemServer(t *testing.T) {
	fx := migratetest.Sample()
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", fx)
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	migratetest.TestSource(t, src, fx)
}

func TestFoldersDovecot(t *testing.T) {
	for _, tc := range []struct {
		layout string
		names  map[string]string // path -> name
	}{
		{dovecottest.LayoutDefault, map[string]string{"INBOX": "INBOX", "Sent": "Sent", "Café/Réunions": "Café/Réunions", "Entwürfe": "Entwürfe"}},
		{dovecottest.LayoutCourier, map[string]string{"INBOX": "INBOX", "Sent": "INBOX.Sent", "Café/Réunions": "INBOX.Café.Réunions", "Entwürfe": "INBOX.Entwürfe"}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			t.Parallel()
			fx := migratetest.Sample()
			fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: []string{"Entwürfe"}})
			srv := startDovecot(t, tc.layout, fx)
			src := plain(srv.Addr(), "alice", "secret")
			closeSrc(t, src)
			folders, err := src.Folders(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			byPath := map[string]migrate.Folder{}
			for _, f := range folders {
				byPath[strings.Join(f.Path, "/")] = f
			}
			if folders[0].Name != "INBOX" || folders[0].Role != migrate.RoleInbox || !slices.Equal(folders[0].Path, []string{"INBOX"}) {
				t.Errorf("first folder = %+v, want INBOX", folders[0])
			}
			for path, name := range tc.names {
				if f := byPath[path]; f.Name != name {
					t.Errorf("path %q: Name = %q, want %q", path, f.Name, name)
				}
			}
			wantRoles := map[string]migrate.Role{"INBOX": migrate.RoleInbox, "Sent": migrate.RoleSent, "Drafts": migrate.RoleDrafts,
				"Trash": migrate.RoleTrash, "Junk": migrate.RoleJunk, "Archive": migrate.RoleArchive,
				"Projects": migrate.RoleNone, "Entwürfe": migrate.RoleNone /* \Drafts is claimed by SPECIAL-USE */}
			for path, role := range wantRoles {
				if f := byPath[path]; f.Role != role {
					t.Errorf("path %q: Role = %q, want %q", path, f.Role, role)
				}
			}
			if f := byPath["Projects/2024"]; f.Messages != 2 || f.UIDValidity == 0 || string(f.Delimiter) != srv.Delimiter() {
				t.Errorf("Projects/2024 = %+v", f)
			}
			// Round trip: the decoded name selects the folder again.
			var n int
			if err := src.List(context.Background(), byPath["Café/Réunions"], func(migrate.MessageInfo) error { n++; return nil }); err != nil || n != 1 {
				t.Errorf("List Café/Réunions: %d messages, err %v", n, err)
			}
		})
	}
}

func TestRolesFromNames(t *testing.T) {
	// imapmemserver without SPECIAL-USE attributes: roles come from names.
	addr := startMem(t, "alice", "secret")
	fx := &migratetest.Fixture{}
	for _, p := range []string{"Sent Items", "Entwürfe", "Papierkorb", "Spam", "Archiv", "Notes"} {
		fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: []string{p}})
	}
	seed(t, addr, "alice", "secret", fx)
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	folders, err := src.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]migrate.Role{}
	for _, f := range folders {
		got[f.Name] = f.Role
	}
	want := map[string]migrate.Role{"INBOX": migrate.RoleInbox, "Sent Items": migrate.RoleSent, "Entwürfe": migrate.RoleDrafts,
		"Papierkorb": migrate.RoleTrash, "Spam": migrate.RoleJunk, "Archiv": migrate.RoleArchive, "Notes": migrate.RoleNone}
	for name, role := range want {
		if got[name] != role {
			t.Errorf("%q: role %q, want %q", name, got[name], role)
		}
	}
}

func inbox(t testing.TB, src *imapsrc.Source) migrate.Folder {
	t.Helper()
	folders, err := src.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		if f.Role == migrate.RoleInbox {
			return f
		}
	}
	t.Fatal("no INBOX")
	return migrate.Folder{}
}

func TestListMetadata(t *testing.T) {
	fx := migratetest.Sample()
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", fx)
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	var got []migrate.MessageInfo
	if err := src.List(context.Background(), inbox(t, src), func(m migrate.MessageInfo) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	want := fx.Folders[0].Messages
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.UID != uint32(i+1) || m.MessageID != want[i].MessageID() || m.Size != int64(len(want[i].Raw)) ||
			!m.InternalDate.Equal(want[i].InternalDate) || !migrate.SameFlags(m.Flags, want[i].Flags) {
			t.Errorf("message %d = %+v, want %s, %d bytes, %v, %v", i, m, want[i].MessageID(), len(want[i].Raw), want[i].InternalDate, want[i].Flags)
		}
		if !strings.HasPrefix(m.MessageID, "<") || !strings.HasSuffix(m.MessageID, ">") {
			t.Errorf("Message-ID %q lost its angle brackets", m.MessageID)
		}
	}
}

func TestUIDValidityChanged(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", bigFixture(2))
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	f.UIDValidity++
	err := src.List(context.Background(), f, func(migrate.MessageInfo) error { return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) || !strings.HasPrefix(err.Error(), "imapsrc: ") {
		t.Errorf("List: err = %v, want imapsrc: ... ErrUIDValidityChanged", err)
	}
	err = src.Fetch(context.Background(), f, []uint32{1}, func(*migrate.Message) error { return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) {
		t.Errorf("Fetch: err = %v, want ErrUIDValidityChanged", err)
	}
}

func TestBadPassword(t *testing.T) {
	const pw = "wrong-Pa55word-xyzzy"
	check := func(t *testing.T, addr, user string) {
		src := plain(addr, user, pw)
		closeSrc(t, src)
		_, err := src.Folders(context.Background())
		if !errors.Is(err, migrate.ErrMailbox) {
			t.Fatalf("err = %v, want ErrMailbox", err)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the error contains the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "imapsrc: ") {
			t.Errorf("error without package prefix: %v", err)
		}
		if src.Reconnects() != 0 {
			t.Errorf("Reconnects = %d after an authentication failure", src.Reconnects())
		}
	}
	t.Run("memserver", func(t *testing.T) { check(t, startMem(t, "alice", "secret"), "alice") })
	t.Run("dovecot", func(t *testing.T) { check(t, startDovecot(t, "", nil).Addr(), "alice") })
	t.Run("dovecot-master", func(t *testing.T) { check(t, startDovecot(t, "", nil).Addr(), "alice*admin") })
}

func TestPlaintextRefusedByDefault(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	for _, sec := range []imapsrc.Security{imapsrc.TLS, imapsrc.StartTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			src := imapsrc.New(&imapsrc.Options{Addr: addr, Security: sec, Username: "alice", Password: "secret", DialTimeout: 5 * time.Second})
			closeSrc(t, src)
			_, err := src.Folders(context.Background())
			if err == nil {
				t.Fatal("connected to a plaintext server without Security: Plaintext")
			}
			if !errors.Is(err, migrate.ErrMailbox) || !strings.Contains(strings.ToLower(err.Error()), "tls") {
				t.Errorf("err = %v, want a mailbox error about TLS", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestFetchDovecotBodiesAndSeen(t *testing.T) {
	fx := bigFixture(12)
	srv := startDovecot(t, "", fx)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret", FetchChunk: 5})
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
		if want := fx.Folders[0].Messages[m.UID-1].Raw; string(body) != string(want) || m.Size != int64(len(want)) {
			t.Errorf("UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []uint32{1, 5, 7, 12}) {
		t.Errorf("delivered %v", got)
	}
	if err := src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		if m.HasFlag(migrate.FlagSeen) != slices.Contains(fx.Folders[0].Messages[m.UID-1].Flags, migrate.FlagSeen) {
			t.Errorf("UID %d: flags %v after Fetch", m.UID, m.Flags)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// dropSession kills the Dovecot session serving the test. Dovecot hands a
// new login to its imap process a moment after the client sees the
// login's answer, so it waits (up to 2 s) for there to be one to kill.
func dropSession(t *testing.T, srv *dovecottest.Server) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); srv.DropConnections() == 0; {
		if time.Now().After(deadline) {
			t.Error("no session to drop")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

// TestDropDuringFetch kills the Dovecot session twice while Fetch is
// streaming: every message must still arrive exactly once, intact, with
// its Message-ID, and each drop be noticed and reported. Little is in
// flight, so that the messages after a drop cannot all be sitting in the
// socket already.
func TestDropDuringFetch(t *testing.T) {
	fetchThroughDrops(t, 30, &imapsrc.Options{FetchChunk: 4, MaxBytesInFlight: 8 << 10}, 6, 19)
}

// TestDropDuringPipelinedFetch is the same with several UID FETCH
// commands in flight when the session dies.
func TestDropDuringPipelinedFetch(t *testing.T) {
	fetchThroughDrops(t, 60, &imapsrc.Options{FetchChunk: 5, MaxBytesInFlight: 64 << 10}, 7, 33)
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
	src.Observe(func(migrate.Event) { events++ })
	var uids []uint32
	for i := 1; i <= n; i++ {
		uids = append(uids, uint32(i))
	}
	count := map[uint32]int{}
	dropped := map[uint32]bool{}
	err := src.Fetch(context.Background(), f, uids, func(m *migrate.Message) error {
		if slices.Contains(dropAt, m.UID) && !dropped[m.UID] {
			dropped[m.UID] = true
			dropSession(t, srv)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err // the connection broke mid-body: Fetch retries it
		}
		want := fx.Folders[0].Messages[m.UID-1]
		if string(body) != string(want.Raw) || m.MessageID != want.MessageID() {
			t.Errorf("UID %d: body or Message-ID differs (%q)", m.UID, m.MessageID)
		}
		count[m.UID]++
		return nil
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	for _, u := range uids {
		if count[u] != 1 {
			t.Errorf("UID %d delivered %d times", u, count[u])
		}
	}
	if src.Reconnects() < len(dropAt) || events != src.Reconnects() {
		t.Errorf("Reconnects = %d, events %d; want >= %d, one event each", src.Reconnects(), events, len(dropAt))
	}
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
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDropDuringList(t *testing.T) {
	const n = 40
	fx := bigFixture(n)
	srv := startDovecot(t, dovecottest.LayoutCourier, fx)
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src)
	got := listDroppingAt(t, srv, 10, func(fn func(migrate.MessageInfo) error) error {
		return src.List(context.Background(), f, fn)
	})
	var want []uint32
	for i := 1; i <= n; i++ {
		want = append(want, uint32(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %v", got)
	}
	// The next operation works whether the drop was noticed during List
	// or only afterwards (the whole listing may already have been in the
	// socket buffers when the session was killed: then the next operation
	// finds the idle connection dead and reopens it).
	if _, err := src.Folders(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("reconnects: %d", src.Reconnects())
}

func TestCallbackErrorAndClose(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", bigFixture(5))
	src := plain(addr, "alice", "secret")
	f := inbox(t, src)
	stop := errors.New("stop")
	calls := 0
	if err := src.List(context.Background(), f, func(migrate.MessageInfo) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("List: err %v after %d calls", err, calls)
	}
	// The Source is usable after a callback error.
	var mu sync.Mutex
	n := 0
	if err := src.Fetch(context.Background(), f, []uint32{1, 2, 3}, func(*migrate.Message) error { mu.Lock(); n++; mu.Unlock(); return nil }); err != nil || n != 3 {
		t.Errorf("Fetch after a callback error: %d messages, err %v", n, err)
	}
	if src.Reconnects() != 0 {
		t.Errorf("Reconnects = %d; a callback error is not a dropped connection", src.Reconnects())
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Folders(context.Background()); err == nil {
		t.Error("Folders after Close succeeded")
	}
}
