package mailferry_test

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/targetcheck"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// This file holds the library-level cases of the fault suite ("nothing
// twice, whatever happens"): a real Dovecot, the Engine with a bolt state,
// the exchange sink and the Graph emulator, with a fault injected while a
// batch of several mailboxes runs: Dovecot restarted, 429, 503 and 504
// storms, the emulator's own budget overrun, and connections reset during
// upload sessions. Each case ends with every source message in the target
// exactly once, complete, and nothing failed. The cases of the command
// (killed, state deleted or damaged, disk full, two processes) are in
// examples/imap2exchange/fault_test.go.
//
// By default they run in a short form, part of go test ./...; with
// MAILFERRY_FAULTS=full they run on more messages:
//
//	MAILFERRY_FAULTS=full go test -run Faults -v . ./examples/imap2exchange

// TestMain lets 8 parallel tests run at once unless -test.parallel says
// otherwise: the fault suite's tests mostly wait (Retry-After, backoff, a
// Dovecot down), so the default, one per CPU, would make the package take
// their sum.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}

// faultsFull reports whether the fault suite runs in its full form.
func faultsFull() bool { return os.Getenv("MAILFERRY_FAULTS") == "full" }

// checkExactlyOnce fails t unless user's mailbox holds every message of
// fx exactly once (CheckFixture: by content, folder and flags, and
// nothing else), each item stamped with a watermark of its own (so none
// is a partial copy), and each attachment of payloads whole, once.
func checkExactlyOnce(t *testing.T, graph *exchangetest.Server, user string, fx *migratetest.Fixture, payloads map[string][]byte) {
	t.Helper()
	for _, d := range graph.CheckFixture(user, fx) {
		t.Errorf("%s: %s", user, d)
	}
	for _, m := range graph.Messages(user) {
		if _, ok := m.ExtendedProperties[exchange.WatermarkProperty]; !ok {
			t.Errorf("%s: item %s (%q) has no watermark: a partial copy", user, m.ID, m.Subject)
		}
	}
	targetcheck.Copies(t, graph, user, payloads)
}

// faultWorld is a batch of mailboxes on one Dovecot, each seeded with the
// same fixture, and an emulator holding their targets.
type faultWorld struct {
	fx       *migratetest.Fixture
	payloads map[string][]byte
	dc       *dovecottest.Server
	users    map[string]string // IMAP user -> password
	graph    *exchangetest.Server
	client   *exchange.Client
	state    *boltstate.State
	storms   stormFront // in front of graph: the client's Graph
}

// stormFront serves the emulator, except that during a storm every
// request is answered with the storm's fault (FailNext, one per request),
// as during an outage or a throttling episode of Exchange Online.
type stormFront struct {
	g      *exchangetest.Server
	mu     sync.Mutex
	until  time.Time
	status int
	after  time.Duration
	hits   int
}

// storm makes every request of the next d answer status, with a
// Retry-After of after (none when 0).
func (f *stormFront) storm(d time.Duration, status int, after time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until, f.status, f.after = time.Now().Add(d), status, after
}

// failed returns the number of requests failed by storms so far.
func (f *stormFront) failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func (f *stormFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	on, status, after := time.Now().Before(f.until), f.status, f.after
	if on {
		f.hits++
	}
	f.mu.Unlock()
	if on {
		f.g.FailNext(1, status, after)
	}
	f.g.ServeHTTP(w, r)
}

// newFaultWorld starts Dovecot with users u1... (mailboxes of them),
// seeds each with fx, and starts the emulator (eopts) and a client for
// it (xopts: nil turns pacing off; Credential and BaseURL are set here),
// and opens a bolt state.
func newFaultWorld(t *testing.T, mailboxes int, fx *migratetest.Fixture, payloads map[string][]byte,
	eopts *exchangetest.Options, xopts *exchange.Options) *faultWorld {
	t.Helper()
	w := &faultWorld{fx: fx, payloads: payloads, users: map[string]string{}}
	for i := range mailboxes {
		w.users[fmt.Sprintf("u%d", i+1)] = fmt.Sprintf("u%d-dovecot-pw", i+1)
	}
	w.dc = dovecottest.Start(t, &dovecottest.Options{Users: w.users})
	for u, pw := range w.users {
		if err := imapsrctest.Seed(w.dc.Addr(), u, pw, fx); err != nil {
			t.Fatal(err)
		}
	}
	w.graph = exchangetest.NewServer(eopts)
	t.Cleanup(w.graph.Close)
	w.storms.g = w.graph
	front := httptest.NewServer(&w.storms)
	t.Cleanup(front.Close)
	o := exchange.Options{Budget: &exchange.Budget{}}
	if xopts != nil {
		o = *xopts
	}
	o.Credential, o.BaseURL = exchange.StaticToken("faults"), front.URL
	var err error
	if w.client, err = exchange.NewClient(&o); err != nil {
		t.Fatal(err)
	}
	for u := range w.users {
		w.graph.AddMailbox(u + "@contoso.com")
	}
	if w.state, err = boltstate.Open(filepath.Join(t.TempDir(), "state.db"), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.state.Close() })
	return w
}

// jobs returns one job per user, each with a new IMAP source.
func (w *faultWorld) jobs(t *testing.T) []migrate.Job {
	var jobs []migrate.Job
	for u, pw := range w.users {
		src := newSource(t, &imapsrc.Options{Addr: w.dc.Addr(), Username: u, Password: pw})
		jobs = append(jobs, migrate.Job{Mailbox: u + "@contoso.com", Source: src, Sink: w.client.Mailbox(u + "@contoso.com")})
	}
	return jobs
}

// check fails t unless every mailbox holds its messages exactly once.
func (w *faultWorld) check(t *testing.T) {
	t.Helper()
	for u := range w.users {
		checkExactlyOnce(t, w.graph, u+"@contoso.com", w.fx, w.payloads)
	}
}

// TestFaultsDovecotRestart restarts Dovecot (killed, then started again on
// the same port with the same mail) while a batch of three mailboxes is
// being read: each time a mailbox begins copying its folder "Bulk", so
// that a fetch is under way.
//
//   - restart: Dovecot is back within a few tens of milliseconds; imapsrc
//     reconnects and resumes within the run, which ends with every
//     message copied exactly once and nothing failed. Once in the short
//     form, three times in the full form.
//   - outage: Dovecot is down for 2 s, refusing connections. imapsrc
//     keeps trying to reach it (for up to imapsrc.Options.ReconnectFor,
//     two minutes by default; imapsrc.MaxReconnects bounds only
//     connections made and lost again without progress), so the run
//     rides it out like the restart: every message copied exactly once
//     and nothing failed, in one run.
func TestFaultsDovecotRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		down     time.Duration
		restarts int
	}{
		{"restart", 0, 1},
		{"outage", 2 * time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			small := 30
			if faultsFull() {
				small = 300
				if tc.down == 0 {
					tc.restarts = 3
				}
			}
			// Bulk's messages are of 32 KB, so that its fetch is not over
			// as soon as it begins.
			fx, payloads := migratetest.BulkFixture(small, 32<<10, 3<<20+1000)
			w := newFaultWorld(t, 3, fx, payloads, nil, nil)
			total := 3 * fx.Count()
			var mu sync.Mutex
			var restartErrs []error
			var wg sync.WaitGroup
			started := 0
			// Bodies are read only a little ahead of the Puts, so that
			// reading lasts as long as the batch (the large message is
			// streamed from Dovecot into its Put).
			opts := &migrate.Options{State: w.state, MaxBytesInFlightPerMailbox: 64 << 10, OnEvent: func(e migrate.Event) {
				if e.Kind != migrate.EventFolderStarted || e.Folder != "Bulk" || started >= tc.restarts {
					return
				}
				started++
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					err := w.dc.Restart(tc.down)
					mu.Lock()
					restartErrs = append(restartErrs, err)
					mu.Unlock()
					t.Logf("Dovecot restarted as %s began Bulk, in %v", e.Mailbox, time.Since(start).Round(time.Millisecond))
				}()
			}}
			rep := migrate.NewEngine(opts).Run(t.Context(), w.jobs(t)...)
			wg.Wait()
			if len(restartErrs) != tc.restarts {
				t.Fatalf("%d restarts, want %d", len(restartErrs), tc.restarts)
			}
			for _, err := range restartErrs {
				if err != nil {
					t.Fatal(err)
				}
			}
			reconnects := 0
			for _, mb := range rep.Mailboxes {
				reconnects += mb.Reconnects
			}
			// The batch went on after the last restart: sessions were
			// opened again.
			log := w.dc.Log()
			after := log[strings.LastIndex(log, "starting up"):]
			if logins := strings.Count(after, "Login: user="); logins == 0 {
				t.Errorf("no IMAP login after the last restart: the batch was over")
			}
			copied := rep.Totals().Copied
			t.Logf("%d restarts, %d reconnects, %d of %d messages copied", tc.restarts, reconnects, copied, total)
			targetcheck.Complete(t, rep) // one run, completed: no folder failed
			if copied != total {
				t.Errorf("copied %d, want %d", copied, total)
			}
			w.check(t)
		})
	}
}

// scaledBudget is the client's Budget for the emulator's budget b with
// its windows divided by scale, as exchange's BenchmarkBudget* scale
// them.
func scaledBudget(b *exchangetest.Budget, scale float64) *exchange.Budget {
	return &exchange.Budget{
		MaxConcurrentRequests:   b.MaxConcurrentRequests,
		MaxRequestsPerWindow:    b.MaxRequestsPerWindow,
		RequestWindow:           time.Duration(float64(exchangetest.RequestWindow) / scale),
		MaxUploadBytesPerWindow: b.MaxUploadBytesPerWindow,
		UploadWindow:            time.Duration(float64(exchangetest.UploadWindow) / scale),
	}
}

// TestFaultsThrottleStorms runs a batch of three mailboxes against an
// emulator that enforces Exchange Online's budgets with time scaled
// down, the client paced to the same scaled budget, through storms:
// while the batch runs, every request of a few seconds is answered
//
//   - 429 ApplicationThrottled with Retry-After (the whole mailbox
//     pauses), or
//   - 503 without Retry-After (exponential backoff), then 504 (whose
//     creating POSTs look for their item before they are sent again),
//     then 503 with Retry-After;
//
// and, in a third run, the client is paced to twice the emulator's
// budgets, as when two processes share an app registration, so that the
// emulator's own throttling answers 429: each mailbox has two messages
// of 3 MB, and the emulator takes 4.5 MB of upload per window (scaled to
// 2.5 s), so the second upload is refused whatever the speed of the
// machine (the client paces them under a second apart). Each ends with
// every message exactly once and nothing failed, under the client's
// default retries (5: a request rides out 429s for 5 s at Retry-After 1,
// and backoff for about 8 s).
//
// The storms are windows of time, not FailNext(n) bursts: n faults in a
// row fail a request that meets more than 5 of them, which happens as
// soon as n exceeds five times the requests in flight, and a mailbox
// creating its folders or listing one has one request in flight.
func TestFaultsThrottleStorms(t *testing.T) {
	t.Parallel()
	small := 24
	if faultsFull() {
		small = 200
	}
	type storm struct {
		at     int // percent of the batch copied
		d      time.Duration
		status int
		after  time.Duration
	}
	for _, tc := range []struct {
		name    string
		storms  []storm
		budget  *exchangetest.Budget // the emulator's; nil: Exchange Online's
		scale   float64              // the emulator's TimeScale
		overrun int                  // the client paces to overrun times the emulator's budgets
		large   int                  // messages over 3 MB per mailbox
	}{
		{name: "429", scale: 60, large: 1, storms: []storm{{0, 700 * time.Millisecond, 429, time.Second}, {50, 500 * time.Millisecond, 429, time.Second}}},
		{name: "503-504", scale: 60, large: 1, storms: []storm{{0, 700 * time.Millisecond, 503, 0}, {30, 400 * time.Millisecond, 504, 0}, {60, 400 * time.Millisecond, 503, time.Second}}},
		{name: "budget", scale: 120, large: 2, overrun: 2, budget: &exchangetest.Budget{MaxConcurrentRequests: 4,
			MaxRequestsPerWindow: 10000, MaxUploadBytesPerWindow: 9 << 19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emulated := tc.budget
			if emulated == nil {
				emulated = exchangetest.DefaultBudget()
			}
			client := scaledBudget(emulated, tc.scale)
			if tc.overrun > 0 {
				client.MaxRequestsPerWindow *= tc.overrun
				client.MaxUploadBytesPerWindow *= int64(tc.overrun)
			}
			var large []int
			for range tc.large {
				large = append(large, 3<<20+1000)
			}
			fx, payloads := migratetest.BulkFixture(small, 0, large...)
			w := newFaultWorld(t, 3, fx, payloads, &exchangetest.Options{Budget: emulated, TimeScale: tc.scale},
				&exchange.Options{Budget: client})
			total := 3 * fx.Count()
			next := 0
			fire := func(n int) {
				for next < len(tc.storms) && n >= total*tc.storms[next].at/100 {
					s := tc.storms[next]
					w.storms.storm(s.d, s.status, s.after)
					next++
				}
			}
			fire(0)
			var copied atomic.Int32
			eng := migrate.NewEngine(&migrate.Options{State: w.state, OnEvent: func(e migrate.Event) {
				if e.Kind == migrate.EventMessageCopied {
					fire(int(copied.Add(1)))
				}
			}})
			start := time.Now()
			rep := eng.Run(t.Context(), w.jobs(t)...)
			targetcheck.Complete(t, rep)
			if next != len(tc.storms) {
				t.Errorf("%d storms of %d injected", next, len(tc.storms))
			}
			throttled := 0
			for _, mb := range rep.Mailboxes {
				throttled += mb.Throttled
			}
			st := w.graph.Stats()
			if throttled == 0 {
				t.Errorf("no throttling reported")
			}
			if len(tc.storms) > 0 && w.storms.failed() == 0 {
				t.Errorf("the storms answered no request")
			}
			if tc.budget != nil && st.Throttled == 0 {
				t.Errorf("the emulator's budget throttled no request")
			}
			// Stats count 429s only (a storm's and the budget's), not 503
			// or 504; the client reports each of them as throttling.
			t.Logf("%d messages in %v: %d requests; %d answered by storms; %d answered 429 (%v); %d throttling events reported",
				total, time.Since(start).Round(10*time.Millisecond), st.Requests, w.storms.failed(), st.Throttled, st.ThrottledBy, throttled)
			w.check(t)
		})
	}
}

// TestFaultsUploadReset breaks one PUT of an upload session: the
// connection dropped before the bytes are stored, the answer lost after
// they are (for an intermediate chunk, and for the last one, which
// completes the attachment), and a 503. The message arrives once, its
// attachment whole, and nothing fails.
func TestFaultsUploadReset(t *testing.T) {
	t.Parallel()
	// uploadChunk in exchange is 3.75 MiB: 3 MB and 1,000 bytes take one
	// PUT, 6 MB two.
	for _, tc := range []struct {
		name  string
		size  int
		fault exchangetest.UploadFault
		puts  int // the PUTs to expect, retries included
	}{
		{"dropped", 3<<20 + 1000, exchangetest.UploadFault{}, 2},
		{"answer-lost-last-chunk", 3<<20 + 1000, exchangetest.UploadFault{Stored: true}, 2},
		{"answer-lost-first-chunk", 6 << 20, exchangetest.UploadFault{Stored: true}, 3},
		{"503", 6 << 20, exchangetest.UploadFault{Status: 503}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx, payloads := migratetest.BulkFixture(4, 0, tc.size)
			w := newFaultWorld(t, 1, fx, payloads, nil, nil)
			w.graph.FailNextUpload(tc.fault)
			rep := migrate.NewEngine(&migrate.Options{State: w.state}).Run(t.Context(), w.jobs(t)...)
			targetcheck.Complete(t, rep)
			if got := w.graph.Stats().ByRoute["PUT /api/v2.0/Users('{user}')/Messages('{id}')/AttachmentSessions('{id}')"]; got < tc.puts {
				t.Errorf("%d PUTs to the upload session, want at least %d", got, tc.puts)
			}
			w.check(t)
		})
	}
}
