package exchange

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// probeRoutes returns the requests of one probe in a mailbox that its
// Client has not swept yet, by the emulator's route: the sweep's one
// listing (nothing to remove), then the probe's own.
func probeRoutes() map[string]int {
	return map[string]int{
		"GET /users/{user}/mailFolders":                       1,
		"POST /users/{user}/mailFolders":                      1,
		"POST /users/{user}/mailFolders/{id}/importMime":      1,
		"PATCH /users/{user}/messages/{id}":                   1,
		"GET /users/{user}/messages/{id}":                     1,
		"DELETE /users/{user}/messages/{id}":                  1,
		"POST /users/{user}/mailFolders/{id}/permanentDelete": 1,
	}
}

// checkNoProbeLeft fails the test when the probe left a folder or a
// message behind.
func checkNoProbeLeft(t *testing.T, e *env) {
	t.Helper()
	for _, f := range e.srv.Folders(testUser) {
		if strings.HasPrefix(f.DisplayName, "mailferry-probe-") {
			t.Errorf("the probe left its folder %q", f.DisplayName)
		}
	}
	for _, m := range e.srv.Messages(testUser) {
		if m.Subject == "mailferry received-date probe" {
			t.Errorf("the probe left its canary %s", m.ID)
		}
	}
}

func TestProbeReceivedDates(t *testing.T) {
	for _, honour := range []bool{false, true} {
		t.Run(map[bool]string{false: "not honoured", true: "honoured"}[honour], func(t *testing.T) {
			e := newEnv(t, &envOptions{server: &exchangetest.Options{HonourDeliveryTimePatch: honour}})
			if _, known := e.c.ReceivedDatesProbe(); known {
				t.Fatal("known before any probe")
			}
			got, err := e.mb.ProbeReceivedDates(t.Context())
			if err != nil || got != honour {
				t.Fatalf("ProbeReceivedDates = %v, %v; want %v", got, err, honour)
			}
			if h, known := e.c.ReceivedDatesProbe(); h != honour || !known {
				t.Errorf("ReceivedDatesProbe = %v, %v; want %v, true", h, known, honour)
			}
			st := e.srv.Stats()
			for route, n := range probeRoutes() {
				if st.ByRoute[route] != n {
					t.Errorf("%s: %d requests, want %d (all: %v)", route, st.ByRoute[route], n, st.ByRoute)
				}
			}
			if st.Requests != len(probeRoutes()) {
				t.Errorf("%d requests, want %d", st.Requests, len(probeRoutes()))
			}
			checkNoProbeLeft(t, e)
			// The answer is the Client's: another mailbox does not probe.
			e.srv.AddMailbox("bob@contoso.com")
			if got, err := e.c.Mailbox("bob@contoso.com").ProbeReceivedDates(t.Context()); got != honour || err != nil {
				t.Errorf("second probe = %v, %v", got, err)
			}
			if n := e.srv.Stats().Requests; n != st.Requests {
				t.Errorf("the answer was not kept: %d more requests", n-st.Requests)
			}
		})
	}
}

// TestProbeConcurrent starts many Puts at once: one probe runs, the
// others wait for its answer.
func TestProbeConcurrent(t *testing.T) {
	e := newEnv(t, &envOptions{server: &exchangetest.Options{HonourDeliveryTimePatch: true, Latency: 5 * time.Millisecond}})
	inbox := e.wellKnown(t, "inbox")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.mb.Put(t.Context(), inbox, message("INBOX", uint32(i+1), sampleMIME("<c@example.org>", "c")))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if n := e.srv.Stats().ByRoute["POST /users/{user}/mailFolders"]; n != 1 {
		t.Errorf("%d probes, want 1", n)
	}
	for _, m := range e.srv.Messages(testUser) {
		if m.MIME == nil || !m.ReceivedDateTime.Equal(time.Date(2020, 5, 17, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("message %s: MIME kept %v, received %v", m.ID, m.MIME != nil, m.ReceivedDateTime)
		}
	}
}

// answer returns a Graph error answer to r.
func answer(r *http.Request, status int, code string) *http.Response {
	body := `{"error":{"code":"` + code + `","message":"injected"}}`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
}

// TestProbeRefusedPatch: a PATCH that Graph refuses is an answer, not a
// failure.
func TestProbeRefusedPatch(t *testing.T) {
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch {
			return answer(r, http.StatusBadRequest, "ErrorInvalidPropertySet"), nil
		}
		return nil, nil
	}})
	got, err := e.mb.ProbeReceivedDates(t.Context())
	if got || err != nil {
		t.Fatalf("ProbeReceivedDates = %v, %v; want false, nil", got, err)
	}
	if h, known := e.c.ReceivedDatesProbe(); h || !known {
		t.Errorf("ReceivedDatesProbe = %v, %v", h, known)
	}
	checkNoProbeLeft(t, e)
}

// TestProbeFailures checks which failures are kept and which are tried
// again, and that the probe cleans up after each.
func TestProbeFailures(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		e := newEnv(t, &envOptions{maxRetries: -1, hook: func(r *http.Request) (*http.Response, error) {
			if fail.Load() && strings.HasSuffix(r.URL.Path, "/importMime") {
				return answer(r, http.StatusServiceUnavailable, "ServiceUnavailable"), nil
			}
			return nil, nil
		}})
		ctx, events := observed(t.Context())
		if _, err := e.mb.ProbeReceivedDates(ctx); !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("probe through a 503: %v, want ErrTransient", err)
		}
		checkNoProbeLeft(t, e)
		before := e.srv.Stats().Requests
		// A Put meanwhile does without the answer: the JSON create, a
		// notice that says why, and no new probe.
		fail.Store(false)
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), message("INBOX", 1, sampleMIME("<t@example.org>", "t")))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.srv.Message(testUser, id); got.MIME != nil {
			t.Errorf("imported without an answer")
		}
		if n := e.srv.Stats().ByRoute["POST /users/{user}/mailFolders"]; n != 1 {
			t.Errorf("probed again at once: %d probes", n)
		}
		if n := e.srv.Stats().Requests - before; n != 1 {
			t.Errorf("Put made %d requests, want the JSON create alone", n)
		}
		if ev := events(); len(ev) == 0 || !strings.HasPrefix(ev[len(ev)-1].Reason, "Could not learn whether Exchange honours") ||
			!strings.Contains(ev[len(ev)-1].Reason, "503") {
			t.Errorf("events %+v, want a notice of the failed probe", ev)
		}
		// A minute later, the next call probes again.
		e.c.probe.mu.Lock()
		e.c.probe.retryAt = time.Now()
		e.c.probe.mu.Unlock()
		if got, err := e.mb.ProbeReceivedDates(t.Context()); got || err != nil {
			t.Errorf("probe again: %v, %v; want false, nil", got, err)
		}
		if _, known := e.c.ReceivedDatesProbe(); !known {
			t.Errorf("the second probe's answer was not kept")
		}
		checkNoProbeLeft(t, e)
	})
	t.Run("mailbox", func(t *testing.T) {
		e := newEnv(t, nil)
		e.srv.AddUserWithoutMailbox("guest@contoso.com")
		guest := e.c.Mailbox("guest@contoso.com")
		if _, err := guest.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrMailbox) {
			t.Fatalf("probe in a user without a mailbox: %v, want ErrMailbox", err)
		}
		before := e.srv.Stats().Requests
		if _, err := guest.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrMailbox) || e.srv.Stats().Requests != before {
			t.Errorf("probed the same mailbox again: %v", err)
		}
		if _, err := e.mb.ProbeReceivedDates(t.Context()); err != nil {
			t.Errorf("another mailbox could not probe: %v", err)
		}
		if _, known := e.c.ReceivedDatesProbe(); !known {
			t.Errorf("no answer from the other mailbox")
		}
	})
	t.Run("definitive", func(t *testing.T) {
		e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.RawQuery, "receivedDateTime") {
				return answer(r, http.StatusBadRequest, "ErrorInvalidRequest"), nil
			}
			return nil, nil
		}})
		if _, err := e.mb.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrItem) {
			t.Fatalf("probe with a refused GET: %v, want ErrItem", err)
		}
		checkNoProbeLeft(t, e)
		before := e.srv.Stats().Requests
		e.srv.AddMailbox("bob@contoso.com")
		if _, err := e.c.Mailbox("bob@contoso.com").ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrItem) ||
			e.srv.Stats().Requests != before {
			t.Errorf("a definitive failure was not kept: %v", err)
		}
		if _, known := e.c.ReceivedDatesProbe(); known {
			t.Errorf("a failure reads as an answer")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var once sync.Once
		e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
			cancelled := false
			if r.Method == http.MethodPatch {
				once.Do(func() { cancelled = true })
			}
			if cancelled {
				cancel()
				return nil, context.Canceled
			}
			return nil, nil
		}})
		if _, err := e.mb.ProbeReceivedDates(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled probe: %v", err)
		}
		checkNoProbeLeft(t, e) // cleaned up without ctx
		if got, err := e.mb.ProbeReceivedDates(t.Context()); err == nil && got {
			t.Errorf("probe after a cancelled one: %v", got)
		} else if err != nil {
			t.Errorf("the next caller did not probe again: %v", err)
		}
	})
}

// captureLogs sends c's log lines, debug included, to the test's log
// and to the buffer it returns.
func captureLogs(t *testing.T, c *Client) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	c.logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return logs
}

// otherClient returns a Client of its own (another process, for the
// sweep) on srv, through transport (nil: srv's), without retries.
func otherClient(t *testing.T, srv *exchangetest.Server, transport http.RoundTripper) *Client {
	t.Helper()
	if transport == nil {
		transport = srv.Client().Transport
	}
	c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{testToken}}, BaseURL: srv.URL(),
		Transport: transport, MaxRetries: -1, Budget: &Budget{},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// killedProbe runs the probe in user's mailbox from a process that is
// killed at the canary's importMime: before Graph sees it, or (served)
// once Graph has stored the canary. A dead process sends nothing more,
// so every later request fails and the probe cannot clean up. It returns
// the name of the scratch folder left behind.
func killedProbe(t *testing.T, srv *exchangetest.Server, user string, served bool) string {
	t.Helper()
	base := srv.Client().Transport
	var dead atomic.Bool
	c := otherClient(t, srv, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if dead.Load() {
			return nil, errors.New("killed")
		}
		if strings.HasSuffix(r.URL.Path, "/importMime") {
			dead.Store(true)
			if served {
				if resp, err := base.RoundTrip(r); err == nil {
					resp.Body.Close()
				}
			}
			return nil, errors.New("killed")
		}
		return base.RoundTrip(r)
	}))
	if _, err := c.Mailbox(user).ProbeReceivedDates(t.Context()); err == nil {
		t.Fatal("the killed probe answered")
	}
	name := ""
	for _, f := range srv.Folders(user) {
		if isProbeName(f.DisplayName) {
			name = f.DisplayName
		}
	}
	if name == "" {
		t.Fatal("the killed probe left no folder")
	}
	return name
}

// topFolder returns the top-level folder of user's mailbox named name.
func topFolder(srv *exchangetest.Server, user, name string) (exchangetest.Folder, bool) {
	root := ""
	for _, f := range srv.Folders(user) {
		if f.WellKnownName == "msgfolderroot" {
			root = f.ID
		}
	}
	for _, f := range srv.Folders(user) {
		if f.ParentID == root && f.DisplayName == name {
			return f, true
		}
	}
	return exchangetest.Folder{}, false
}

// importInto imports raw into the folder id of mb's mailbox.
func importInto(t *testing.T, mb *Mailbox, id string, raw []byte) {
	t.Helper()
	enc := []byte(base64.StdEncoding.EncodeToString(raw))
	if _, err := mb.createItem(t.Context(), "import", nil, importMIMEPath, map[string]string{"folder": id}, textBody(enc)); err != nil {
		t.Fatal(err)
	}
}

func TestIsProbeName(t *testing.T) {
	for name, want := range map[string]bool{
		"mailferry-probe-0123456789ab":  true,
		"mailferry-probe-0123456789AB":  false,
		"Mailferry-Probe-0123456789ab":  false,
		"mailferry-probe-0123456789a":   false,
		"mailferry-probe-0123456789abc": false,
		"mailferry-probe-notes-and-co":  false,
		"mailferry-probe-":              false,
		"mailferry-probes":              false,
	} {
		if got := isProbeName(name); got != want {
			t.Errorf("isProbeName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestProbeSweep: what probes killed midway left (their scratch folder,
// with or without its canary) is removed from each mailbox by the first
// look-up of a Client that uses it, with each removal logged, and
// nothing else is: folders named alike but not as a probe names them,
// or holding more than canaries, or below the top, stay.
func TestProbeSweep(t *testing.T) {
	e := newEnv(t, nil)
	logs := captureLogs(t, e.c)
	const bob = "bob@contoso.com"
	e.srv.AddMailbox(bob)
	withCanary := killedProbe(t, e.srv, testUser, true)
	noCanary := killedProbe(t, e.srv, bob, false)

	// Another process made these in alice's mailbox.
	other := otherClient(t, e.srv, nil).Mailbox(testUser)
	mk := func(parent, name string) string {
		t.Helper()
		id, err := other.createFolder(t.Context(), parent, name)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// A probe whose canary was imported twice (an answer lost, the
	// import sent again): removed as well.
	const twice = "mailferry-probe-00112233aabb"
	id := mk("", twice)
	importInto(t, other, id, probeMIME(twice))
	importInto(t, other, id, probeMIME(twice))
	// Kept: names a probe does not give, and folders that hold more
	// than a probe leaves.
	kept := []string{"mailferry-probe-notes-and-co", "Mailferry-Probe-fedcba987654", "mailferry-probe-0123456789abc", "mailferry-probes"}
	for _, name := range kept {
		importInto(t, other, mk("", name), sampleMIME("<"+name+"@example.org>", name))
	}
	const userMail, withChild = "mailferry-probe-0123456789ab", "mailferry-probe-ba9876543210"
	id = mk("", userMail)
	importInto(t, other, id, probeMIME(userMail))
	importInto(t, other, id, sampleMIME("<mine@example.org>", "mine"))
	mk(mk("", withChild), "Sub")
	kept = append(kept, userMail, withChild)
	inbox := e.wellKnown(t, "inbox")
	mk(inbox, "mailferry-probe-abcdefabcdef")

	before := e.srv.Stats()
	ensureFolder(t, e.mb, "", "Projects", migrate.RoleNone)
	st := e.srv.Stats()
	for _, name := range []string{withCanary, twice} {
		if _, ok := topFolder(e.srv, testUser, name); ok {
			t.Errorf("the killed probe's folder %s is left", name)
		}
		if !strings.Contains(logs.String(), "folder="+name) {
			t.Errorf("the removal of %s was not logged", name)
		}
	}
	for _, name := range kept {
		if _, ok := topFolder(e.srv, testUser, name); !ok {
			t.Errorf("the folder %q was removed", name)
		}
	}
	if !slices.ContainsFunc(e.srv.Folders(testUser), func(f exchangetest.Folder) bool { return f.ParentID == inbox }) {
		t.Errorf("the folder under Inbox was removed")
	}
	for _, m := range e.srv.Messages(testUser) {
		if strings.Contains(m.InternetMessageID, "@mailferry.invalid") && !strings.Contains(m.InternetMessageID, userMail) {
			t.Errorf("a canary is left: %s in %s", m.InternetMessageID, e.srv.FolderPath(testUser, m.FolderID))
		}
	}
	if !strings.Contains(logs.String(), "folder="+userMail) || !strings.Contains(logs.String(), "folder="+withChild) {
		t.Errorf("the folders left in place were not logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the logs hold the token")
	}
	// The sweep: one listing; for each folder that may be a probe's
	// and has no child folder, its messages; a permanentDelete for each
	// removed. Then EnsureFolder's own look-up and creation.
	for route, want := range map[string]int{
		"GET /users/{user}/mailFolders":                       2,
		"GET /users/{user}/mailFolders/{id}/messages":         3,
		"POST /users/{user}/mailFolders/{id}/permanentDelete": 2,
		"POST /users/{user}/mailFolders":                      1,
	} {
		if n := st.ByRoute[route] - before.ByRoute[route]; n != want {
			t.Errorf("%s: %d requests, want %d", route, n, want)
		}
	}
	if n := st.Requests - before.Requests; n != 8 {
		t.Errorf("%d requests, want 8", n)
	}

	// Bob's mailbox is swept when it is used, by the same Client.
	if _, ok := topFolder(e.srv, bob, noCanary); !ok {
		t.Fatalf("bob's mailbox was swept before it was used")
	}
	if _, err := e.c.Mailbox(bob).EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox); err != nil {
		t.Fatal(err)
	}
	if _, ok := topFolder(e.srv, bob, noCanary); ok {
		t.Errorf("the killed probe's folder %s is left in bob's mailbox", noCanary)
	}

	// Once per mailbox and Client: neither another Mailbox nor the
	// probe sweeps alice's again.
	before = e.srv.Stats()
	ensureFolder(t, e.c.Mailbox(testUser), "", "Projects", migrate.RoleNone)
	if _, err := e.mb.ProbeReceivedDates(t.Context()); err != nil {
		t.Fatal(err)
	}
	st = e.srv.Stats()
	if n := st.ByRoute["GET /users/{user}/mailFolders"] - before.ByRoute["GET /users/{user}/mailFolders"]; n != 1 {
		t.Errorf("%d listings of the top-level folders, want 1 (EnsureFolder's look-up, no sweep)", n)
	}
	if n, want := st.Requests-before.Requests, 1+len(probeRoutes())-1; n != want {
		t.Errorf("%d requests, want %d", n, want)
	}
}

// TestProbeSweepCost: in a mailbox with nothing to remove the sweep
// costs one request, once per mailbox and Client.
func TestProbeSweepCost(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.AddMailbox("bob@contoso.com")
	for _, user := range []string{testUser, "bob@contoso.com"} {
		before := e.srv.Stats()
		if _, err := e.c.Mailbox(user).EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox); err != nil {
			t.Fatal(err)
		}
		st := e.srv.Stats()
		sweep := st.Requests - before.Requests - 1 // the well-known folder's GET
		t.Logf("%s: the sweep of a mailbox with nothing to remove: %d request", user, sweep)
		if sweep != 1 || st.ByRoute["GET /users/{user}/mailFolders"]-before.ByRoute["GET /users/{user}/mailFolders"] != 1 {
			t.Errorf("%s: the sweep made %d requests (%v), want 1", user, sweep, st.ByRoute)
		}
		if _, err := e.c.Mailbox(user).EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.Stats().Requests - st.Requests; n != 1 {
			t.Errorf("%s: a second Mailbox made %d requests, want 1 (no sweep)", user, n)
		}
	}
}

// TestProbeSweepSparesRunningProbe: a sweep of another Client of this
// process, while a probe runs in the same mailbox, leaves the probe's
// folder alone.
func TestProbeSweepSparesRunningProbe(t *testing.T) {
	var (
		once     sync.Once
		other    *Client
		sweepErr error
	)
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch {
			once.Do(func() {
				_, sweepErr = other.Mailbox(testUser).EnsureFolder(r.Context(), "", "Projects", migrate.RoleNone)
			})
		}
		return nil, nil
	}})
	other = otherClient(t, e.srv, nil)
	if _, err := e.mb.ProbeReceivedDates(t.Context()); err != nil {
		t.Fatalf("the probe failed: %v", err)
	}
	if sweepErr != nil {
		t.Fatal(sweepErr)
	}
	st := e.srv.Stats()
	if st.ByRoute["GET /users/{user}/mailFolders/{id}/messages"] != 0 || st.ByRoute["POST /users/{user}/mailFolders/{id}/permanentDelete"] != 1 {
		t.Errorf("the sweep touched the running probe's folder: %v", st.ByRoute)
	}
	if _, known := e.c.ReceivedDatesProbe(); !known {
		t.Errorf("no answer")
	}
	checkNoProbeLeft(t, e)
}

// TestProbeSweepFailure: a sweep that fails is logged and fails nothing:
// a whole migration goes through, and the mailbox is swept again a minute
// later.
func TestProbeSweepFailure(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var sweeps atomic.Int32
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.RawQuery, "startswith") {
			sweeps.Add(1)
			if failing.Load() {
				return answer(r, http.StatusServiceUnavailable, "ServiceUnavailable"), nil
			}
		}
		return nil, nil
	}})
	logs := captureLogs(t, e.c)
	left := killedProbe(t, e.srv, testUser, true)
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<f1@example.org>", "f1"), InternalDate: testInternalDate},
			{Raw: sampleMIME("<f2@example.org>", "f2"), InternalDate: testInternalDate},
		}},
		{Path: []string{"Projects"}, Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<f3@example.org>", "f3"), InternalDate: testInternalDate},
		}},
	}}
	sweeps.Store(0)
	rep := migrate.NewEngine(nil).Run(t.Context(), migrate.Job{Mailbox: testUser, Source: migratetest.NewSource(fx), Sink: e.mb})
	if tot := rep.Totals(); rep.Lost() || tot.Copied != fx.Count() || tot.Failed != 0 {
		t.Fatalf("the migration: %+v, %s %s", tot, rep.Mailboxes[0].Status, rep.Mailboxes[0].Error)
	}
	// One sweep, retried by the transport; no other call of the run
	// swept again.
	if n := sweeps.Load(); n != 1+5 {
		t.Errorf("%d sweep listings, want 1 and 5 retries", n)
	}
	if !strings.Contains(logs.String(), "could not remove the leftovers") {
		t.Errorf("the failed sweep was not logged")
	}
	if _, ok := topFolder(e.srv, testUser, left); !ok {
		t.Fatalf("the leftover is gone though the sweep failed")
	}

	// A minute later, the next look-up sweeps.
	failing.Store(false)
	e.c.probe.mu.Lock()
	e.c.probe.sweeps[testUser].retryAt = time.Now()
	e.c.probe.mu.Unlock()
	ensureFolder(t, e.mb, "", "Later", migrate.RoleNone)
	if _, ok := topFolder(e.srv, testUser, left); ok {
		t.Errorf("the leftover %s is still there after the sweep", left)
	}
	checkNoProbeLeft(t, e)
}
