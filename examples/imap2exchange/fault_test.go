package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/targetcheck"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// This file holds the command's cases of the fault suite ("nothing twice,
// whatever happens"): the command runs as a child process (TestMain) with
// its state on disk, against a real Dovecot and the Graph emulator, which
// both run in the test process and so outlive it. It is killed (SIGKILL)
// at random moments, its state is deleted, damaged or denied room on
// disk, and a second process is started on the same state; each case
// ends with every source message in the target exactly once, complete,
// and nothing failed. The library-level cases are in faults_e2e_test.go
// at the root of the module.
//
// By default the cases run in a short form, part of go test ./... (3
// kills, small mailboxes); the full form kills 20 times, on more and
// larger messages:
//
//	MAILFERRY_FAULTS=full go test -run Faults -v . ./examples/imap2exchange
//
// The kills are drawn from MAILFERRY_FAULTS_SEED when it is set, else
// from the time; the seed is logged, to replay a run's draws.

// faultsFull reports whether the fault suite runs in its full form.
func faultsFull() bool { return os.Getenv("MAILFERRY_FAULTS") == "full" }

// faultSeed returns the seed of the test's random draws, and logs it.
func faultSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MAILFERRY_FAULTS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MAILFERRY_FAULTS_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (MAILFERRY_FAULTS_SEED=%d replays its draws)", seed, seed)
	return seed
}

// faultBatch is a Dovecot holding mailboxes u1, u2, ... (password
// "<user>-imap-pw"), each seeded with the same fixture. Tests only read
// it, so several targets may migrate it at once.
type faultBatch struct {
	dc       *dovecottest.Server
	users    []string
	fx       *migratetest.Fixture
	payloads map[string][]byte
}

func newFaultBatch(t *testing.T, mailboxes, small int, large ...int) *faultBatch {
	t.Helper()
	b := &faultBatch{}
	b.fx, b.payloads = migratetest.BulkFixture(small, 0, large...)
	pws := map[string]string{}
	for i := range mailboxes {
		u := fmt.Sprintf("u%d", i+1)
		b.users = append(b.users, u)
		pws[u] = u + "-imap-pw"
	}
	b.dc = dovecottest.Start(t, &dovecottest.Options{Users: pws})
	for u, pw := range pws {
		if err := imapsrctest.Seed(b.dc.Addr(), u, pw, b.fx); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// arrive delivers new mail to every mailbox of the batch, as mail keeps
// arriving during a migration: small text messages and one message per
// entry of large, with an attachment of that many bytes, into INBOX. The
// messages are numbered from first (BulkMessage), so that waves do not
// share Message-IDs; the batch's fixture and payloads grow with them.
func (b *faultBatch) arrive(t *testing.T, first, small int, large ...int) {
	t.Helper()
	date := time.Date(2024, time.April, 1, 9, 0, 0, 0, time.UTC)
	wave := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	add := func(n, attachment int) {
		raw, payload := migratetest.BulkMessage(n, 0, attachment)
		m := migratetest.FixtureMessage{Raw: raw, InternalDate: date.Add(time.Duration(n) * time.Minute)}
		wave.Folders[0].Messages = append(wave.Folders[0].Messages, m)
		if payload != nil {
			b.payloads[m.MessageID()] = payload
		}
	}
	for i := range small {
		add(first+i, 0)
	}
	for i, size := range large {
		add(first+small+i, size)
	}
	for _, u := range b.users {
		if err := imapsrctest.Seed(b.dc.Addr(), u, u+"-imap-pw", wave); err != nil {
			t.Fatal(err)
		}
	}
	b.fx.Folders[0].Messages = append(b.fx.Folders[0].Messages, wave.Folders[0].Messages...)
}

// total is the number of messages of the batch.
func (b *faultBatch) total() int { return len(b.users) * b.fx.Count() }

// faultTarget is one migration of a faultBatch: an emulator with the
// batch's target mailboxes, a front through which the command reaches it
// (where kills are triggered), and a directory with the CSV, the state
// and the reports.
type faultTarget struct {
	b     *faultBatch
	g     *exchangetest.Server
	front *killFront
	url   string
	dir   string
}

func (b *faultBatch) newTarget(t *testing.T, eopts *exchangetest.Options) *faultTarget {
	t.Helper()
	tg := &faultTarget{b: b, g: exchangetest.NewServer(eopts), dir: t.TempDir()}
	t.Cleanup(tg.g.Close)
	tg.front = &killFront{g: tg.g}
	srv := httptest.NewServer(tg.front)
	t.Cleanup(srv.Close)
	tg.url = srv.URL
	var csv strings.Builder
	csv.WriteString("EmailAddress,UserName,Password\n")
	for _, u := range b.users {
		tg.g.AddMailbox(u + "@contoso.com")
		fmt.Fprintf(&csv, "%s@contoso.com,%s,%s-imap-pw\n", u, u, u)
	}
	if err := os.WriteFile(filepath.Join(tg.dir, "batch.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return tg
}

func (tg *faultTarget) statePath() string { return filepath.Join(tg.dir, "state") }

// args is the command line of a run against the target.
func (tg *faultTarget) args() []string {
	return []string{"-csv", filepath.Join(tg.dir, "batch.csv"), "-imap", tg.b.dc.Addr(), "-security", "plaintext",
		"-graph-url", tg.url, "-state", tg.statePath(), "-report", filepath.Join(tg.dir, "report.json")}
}

// report reads the JSON report of the last run.
func (tg *faultTarget) report(t *testing.T) *migrate.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tg.dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep migrate.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return &rep
}

// items returns the number of items in each target mailbox, and the
// number of complete ones (with a watermark).
func (tg *faultTarget) items() (all, complete int) {
	for _, u := range tg.b.users {
		for _, m := range tg.g.Messages(u + "@contoso.com") {
			all++
			if _, ok := m.ExtendedProperties[exchange.WatermarkProperty]; ok {
				complete++
			}
		}
	}
	return all, complete
}

// checkNoDuplicates fails t if any source message has two complete
// copies (two items with its watermark) in a target mailbox: something a
// later run could not undo.
func (tg *faultTarget) checkNoDuplicates(t *testing.T) {
	t.Helper()
	for _, u := range tg.b.users {
		targetcheck.UniqueWatermarks(t, tg.g, u+"@contoso.com")
	}
}

// checkExactlyOnce fails t unless every target mailbox holds every
// message of the fixture exactly once (CheckFixture: by content, folder
// and flags, and nothing else: no partial copy, no scratch folder's
// message), no two items with one watermark, and each large attachment
// whole, once. Items without a watermark are logged:
// TestFaultsKillBeforeWatermark is about them.
func (tg *faultTarget) checkExactlyOnce(t *testing.T) {
	t.Helper()
	if n := tg.checkStamped(t, t.Logf); n > 0 {
		t.Logf("%d items without a watermark (see TestFaultsKillBeforeWatermark)", n)
	}
	for _, u := range tg.b.users {
		user := u + "@contoso.com"
		for _, d := range tg.g.CheckFixture(user, tg.b.fx) {
			t.Errorf("%s: %s", user, d)
		}
		for _, f := range tg.g.Folders(user) {
			if strings.HasPrefix(f.DisplayName, "mailferry-probe-") {
				t.Errorf("%s: the received-date probe's scratch folder %s is left (%d items)", user, f.DisplayName, f.TotalItemCount)
			}
		}
		targetcheck.Copies(t, tg.g, user, tg.b.payloads)
	}
}

// checkStamped reports through report every item of the targets that
// carries no watermark, and returns how many there are.
func (tg *faultTarget) checkStamped(t *testing.T, report func(string, ...any)) int {
	t.Helper()
	n := 0
	for _, u := range tg.b.users {
		for _, m := range tg.g.Messages(u + "@contoso.com") {
			if _, ok := m.ExtendedProperties[exchange.WatermarkProperty]; !ok {
				n++
				report("%s: item %s (%q) has no watermark", u, m.ID, m.Subject)
			}
		}
	}
	return n
}

// child is the command running as a child process (TestMain).
type child struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	grew chan struct{} // closed by the next Write, for waitFor
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grew != nil {
		close(s.grew)
		s.grew = nil
	}
	return s.b.Write(p)
}

// waitFor waits until the buffer holds n occurrences of sub, or done is
// closed; it reports which.
func (s *syncBuffer) waitFor(sub string, n int, done <-chan struct{}) bool {
	for {
		s.mu.Lock()
		if strings.Count(s.b.String(), sub) >= n {
			s.mu.Unlock()
			return true
		}
		if s.grew == nil {
			s.grew = make(chan struct{})
		}
		grew := s.grew
		s.mu.Unlock()
		select {
		case <-grew:
		case <-done:
			return false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTool starts the command with args, MAILFERRY_GRAPH_TOKEN set and
// the environment extra, as a child process.
func startTool(t *testing.T, args []string, extra ...string) *child {
	t.Helper()
	c := &child{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "IMAP2EXCHANGE_MAIN=1", "MAILFERRY_GRAPH_TOKEN=fault-suite-token")
	c.cmd.Env = append(c.cmd.Env, extra...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

// kill ends the child with SIGKILL and waits for it to exit.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// wait waits for the child to exit and returns its exit code, -1 when it
// was killed.
func (c *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(3 * time.Minute):
		c.kill()
		t.Fatalf("the command ran for 3 minutes\nstdout:\n%s\nstderr:\n%s", c.stdout.String(), c.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("command: %v", c.err)
	return 0
}

// output is the child's stdout and stderr, for failure messages.
func (c *child) output() string {
	return "stdout:\n" + c.stdout.String() + "stderr:\n" + c.stderr.String()
}

// runTool runs the command to its end and returns its exit code.
func runTool(t *testing.T, args []string, extra ...string) (int, *child) {
	t.Helper()
	c := startTool(t, args, extra...)
	return c.wait(t), c
}

// killFront serves the emulator to the command and, once armed, kills the
// command at a request: at the n-th request that match selects, before
// the emulator sees it or (served) after the emulator has carried it out
// but before its answer leaves.
//
// With spareProbe, no kill lands in the received-date probe (its scratch
// folder created, until it is deleted): a trigger does not count the
// probe's requests, and kill (for a time-drawn kill) waits for the probe
// to end. TestFaultsKillDuringProbe kills there on purpose.
type killFront struct {
	g          *exchangetest.Server
	spareProbe bool
	requests   atomic.Int64

	mu       sync.Mutex
	match    func(*http.Request) bool
	left     int
	served   bool
	fire     func()
	fired    bool
	probing  bool
	deferred func()
}

func (f *killFront) arm(match func(*http.Request) bool, n int, served bool, fire func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match, f.left, f.served, f.fire, f.fired, f.deferred = match, n-1, served, fire, false, nil
}

// disarm removes the trigger and reports whether it fired.
func (f *killFront) disarm() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fired := f.fired
	f.match, f.fire, f.deferred, f.probing = nil, nil, nil, false
	return fired
}

// kill returns a function that calls fire at once, or, with spareProbe
// while the probe runs, once it has ended.
func (f *killFront) kill(fire func()) func() {
	return func() {
		f.mu.Lock()
		if f.spareProbe && f.probing {
			f.deferred = fire
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		fire()
	}
}

// isProbeFolder reports whether r creates the received-date probe's
// scratch folder (POST .../mailFolders {"displayName": "mailferry-probe-…"}),
// leaving r's body readable.
func isProbeFolder(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/mailFolders") {
		return false
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, _ = io.ReadAll(zr)
		}
	}
	return bytes.Contains(body, []byte("mailferry-probe-"))
}

func (f *killFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	probeStart := isProbeFolder(r)
	probeEnd := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/permanentDelete")
	f.mu.Lock()
	if probeStart {
		f.probing = true
	}
	hit := false
	if f.match != nil && !f.fired && !(f.spareProbe && f.probing) && f.match(r) {
		if f.left == 0 {
			hit, f.fired = true, true
		} else {
			f.left--
		}
	}
	served, fire := f.served, f.fire
	f.mu.Unlock()
	if !hit {
		f.g.ServeHTTP(w, r)
		if probeEnd {
			f.mu.Lock()
			deferred := f.deferred
			f.probing, f.deferred = false, nil
			f.mu.Unlock()
			if deferred != nil {
				deferred()
			}
		}
		return
	}
	if served {
		f.g.ServeHTTP(httptest.NewRecorder(), r)
	}
	fire()
	panic(http.ErrAbortHandler) // the client is dead; drop the connection
}

// The requests a kill can be triggered at.
var killPoints = []struct {
	name  string
	match func(*http.Request) bool
}{
	// The JSON create of a message (and the MIME create of a draft).
	{"create", func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") && strings.Contains(r.URL.Path, "/mailFolders/")
	}},
	// An attachment's upload session, opened on a message being built.
	{"upload-session", func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/createUploadSession")
	}},
	// The bytes of an upload session.
	{"upload-put", func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/AttachmentSessions(")
	}},
	// A PATCH of a message: the watermark of a message built in several
	// requests, the probe's delivery time, flags.
	{"patch", func(r *http.Request) bool {
		return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/messages/")
	}},
	// A folder created.
	{"folder", func(r *http.Request) bool {
		return r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/mailFolders") || strings.HasSuffix(r.URL.Path, "/childFolders"))
	}},
	// A look-up by watermark (the repairs, the rebuild from the target).
	{"find", func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.RawQuery, "filter")
	}},
}

// probeCanary matches the import of the received-date probe's canary into
// its scratch folder (the command's default, -received-dates source,
// probes once per process).
func probeCanary(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/importMime")
}

// killPoint returns the matcher of the kill point called name.
func killPoint(name string) func(*http.Request) bool {
	for _, p := range killPoints {
		if p.name == name {
			return p.match
		}
	}
	panic("no kill point " + name)
}

// TestFaultsKill kills the command (SIGKILL) at random moments of a batch
// of three mailboxes that includes messages over 3 MB (built through
// upload sessions), again and again, then runs it to the end: every
// message is then in its target exactly once, complete, nothing failed,
// and one more run copies nothing. A kill is drawn either as a time
// after the start, or as a request of the command (a message created, an
// upload session opened, its bytes sent, a PATCH, a folder created, a
// look-up), at which it dies before the emulator carries it out or after,
// with the answer lost; kills at creates are drawn so that the batch's
// messages are spread over the runs. After every kill no message may have
// two complete copies. Short form: 3 kills (a served create, a served
// upload PUT, a time) on 78 messages; full form: runs until 20 of them
// were killed (at most 40 runs), kills drawn at random, on 951 messages
// and more: whenever little is left to copy, new mail arrives (100 small
// messages and a large one per mailbox), as it does during a migration,
// so that every run has work to be killed in.
func TestFaultsKill(t *testing.T) {
	t.Parallel()
	full := faultsFull()
	// Up to rounds runs, until kills of them were killed; at least
	// minKills must be (a kill at a time may come after the end).
	rounds, kills, minKills, small, large := 3, 3, 2, 10, []int{3<<20 + 1000}
	if full {
		rounds, kills, minKills, small, large = 40, 20, 20, 300, []int{3<<20 + 1000, 6 << 20}
	}
	rng := rand.New(rand.NewPCG(faultSeed(t), 1))
	b := newFaultBatch(t, 3, small, large...)
	tg := b.newTarget(t, nil)
	tg.front.spareProbe = true // TestFaultsKillDuringProbe
	killed, complete, waves := 0, 0, 0
	for round := 0; round < rounds && killed < kills; round++ {
		if full && b.total()-complete < 50*len(b.users) {
			waves++
			b.arrive(t, 20000+1000*waves, 100, 3<<20+1000)
			t.Logf("round %d: new mail: %d messages in all", round+1, b.total())
		}
		c := startTool(t, tg.args())
		// The full form draws from the kill points that the work left
		// will meet: while small messages are left, the command copies
		// hundreds a second (and waits for its uploads), so kills come
		// early (a time under 600 ms, a folder created, a look-up, or a
		// create drawn so that the messages left spread over the runs
		// left); once only the large ones are left, at their upload
		// sessions, PUTs and watermark PATCHes, or at a time up to 6 s.
		smallLeft := b.total()-complete > len(b.payloads)*len(b.users)
		point := -1 // index into killPoints, or -1: a time
		served := rng.IntN(2) == 0
		switch {
		case !full && round == 0:
			point, served = 0, true // create
		case !full && round == 1:
			point, served = 2, true // upload-put
		case !full:
		case rng.IntN(4) == 0:
		case smallLeft && rng.IntN(3) > 0:
			point = 0 // create
		case smallLeft:
			point = []int{4, 5}[rng.IntN(2)] // folder, find
		default:
			point = []int{0, 1, 2, 2, 3, 5}[rng.IntN(6)] // create, upload-session, upload-put (twice as likely), patch, find
		}
		var how string
		var timer *time.Timer
		if point >= 0 {
			var n int
			switch killPoints[point].name {
			case "create":
				// Twice the share of the messages left per kill left, on
				// average.
				n = 1 + rng.IntN(max(4, 2*(b.total()-complete)/max(1, kills-killed)))
			case "upload-session", "upload-put":
				n = 1 + rng.IntN(len(b.payloads)*len(b.users))
			default:
				n = 1 + rng.IntN(4)
			}
			how = fmt.Sprintf("at %s #%d", killPoints[point].name, n)
			if served {
				how += ", served, answer lost"
			} else {
				how += ", before the emulator saw it"
			}
			tg.front.arm(killPoints[point].match, n, served, c.kill)
		} else {
			d := time.Duration(100+rng.IntN(1400)) * time.Millisecond
			switch {
			case full && smallLeft:
				d = time.Duration(50+rng.IntN(550)) * time.Millisecond
			case full:
				d = time.Duration(100+rng.IntN(6000)) * time.Millisecond
			}
			how = fmt.Sprintf("after %v", d)
			timer = time.AfterFunc(d, tg.front.kill(c.kill))
		}
		code := c.wait(t)
		tg.front.disarm()
		if timer != nil {
			timer.Stop()
		}
		var all int
		all, complete = tg.items()
		outcome := "killed"
		switch code {
		case -1:
			killed++
		case 0:
			outcome = "ended first"
		default:
			t.Errorf("round %d: exit %d\n%s", round+1, code, c.output())
		}
		t.Logf("round %d: kill %s: %s; the targets hold %d items, %d complete, of %d", round+1, how, outcome, all, complete, b.total())
		tg.checkNoDuplicates(t) // the round is logged above; t.Fatalf below names it
		if t.Failed() {
			t.Fatalf("after round %d:\n%s", round+1, c.output())
		}
	}
	if killed < minKills {
		t.Errorf("%d runs killed, want %d: the runs ended too soon to test much", killed, minKills)
	}

	code, c := runTool(t, tg.args())
	if code != 0 {
		t.Errorf("the last run: exit %d\n%s", code, c.output())
	}
	tot := targetcheck.Complete(t, tg.report(t))
	tg.checkExactlyOnce(t)
	t.Logf("the last run: %+v", tot)

	// One more run copies nothing.
	code, c = runTool(t, tg.args())
	tot = targetcheck.Complete(t, tg.report(t))
	if code != 0 || tot.Copied != 0 || tot.AlreadyCopied != b.total() {
		t.Errorf("a run after the end: exit %d, %d copied, %d already copied of %d\n%s", code, tot.Copied, tot.AlreadyCopied, b.total(), c.output())
	}
	tg.checkExactlyOnce(t)
}

// TestFaultsKillDuringProbe kills the command while it runs the
// received-date probe (exchange.Mailbox.ProbeReceivedDates: a scratch
// folder "mailferry-probe-<random>" at the top of a target mailbox, a
// canary message imported into it, a PATCH, a read, then both deleted),
// right after the canary arrived, then runs it to the end. Every source
// message must be in its target exactly once, and nothing else: the
// scratch folder and its canary must not stay behind.
func TestFaultsKillDuringProbe(t *testing.T) {
	t.Parallel()
	b := newFaultBatch(t, 1, 4)
	tg := b.newTarget(t, nil)
	c := startTool(t, tg.args())
	tg.front.arm(probeCanary, 1, true, c.kill)
	c.wait(t)
	if !tg.front.disarm() {
		t.Fatalf("the run ended before it probed\n%s", c.output())
	}
	if code, c := runTool(t, tg.args()); code != 0 {
		t.Errorf("rerun: exit %d\n%s", code, c.output())
	}
	targetcheck.Complete(t, tg.report(t))
	tg.checkExactlyOnce(t)
}

// killBeforeFirstPatch runs the command on a new batch of one mailbox
// with -received-dates import, so that every message is imported and
// then PATCHed with its watermark, and kills it before its first PATCH
// reaches the emulator. It returns the batch, its target, the command
// line, and how many items the killed run left.
func killBeforeFirstPatch(t *testing.T) (*faultBatch, *faultTarget, []string, int) {
	t.Helper()
	b := newFaultBatch(t, 1, 4)
	tg := b.newTarget(t, nil)
	args := append(tg.args(), "-received-dates", "import")
	c := startTool(t, args)
	tg.front.arm(killPoint("patch"), 1, false, c.kill)
	c.wait(t)
	if !tg.front.disarm() {
		t.Fatalf("the run ended before its first PATCH\n%s", c.output())
	}
	all, complete := tg.items()
	t.Logf("killed: %d items, %d with a watermark", all, complete)
	return b, tg, args, all
}

// TestFaultsKillBeforeWatermark kills the command between an importMime
// and the PATCH that gives the imported item its flags and its watermark
// (with -received-dates import every message takes that path; by default
// drafts and signed or encrypted messages do, and every message on a
// tenant that honours the delivery-time PATCH): the items are in the
// target without a watermark, and the next run repairs them, found by
// their Message-ID. Every item must then carry its watermark: the state
// may be lost later, and a run without state rebuilds it from the
// watermarks alone. So the state is deleted, and the run after it must
// copy nothing again.
func TestFaultsKillBeforeWatermark(t *testing.T) {
	t.Parallel()
	b, tg, args, _ := killBeforeFirstPatch(t)
	code, c := runTool(t, args)
	if code != 0 {
		t.Errorf("rerun: exit %d\n%s", code, c.output())
	}
	tot := targetcheck.Complete(t, tg.report(t))
	t.Logf("rerun: %d copied, %d repaired", tot.Copied, tot.Repaired)
	tg.checkExactlyOnce(t)
	if n := tg.checkStamped(t, t.Errorf); n > 0 {
		t.Errorf("%d repaired items carry no watermark: a run that lost its state would copy them again", n)
	}

	if err := os.Remove(tg.statePath()); err != nil {
		t.Fatal(err)
	}
	code, c = runTool(t, args)
	if code != 0 {
		t.Errorf("run without state: exit %d\n%s", code, c.output())
	}
	tot = targetcheck.Complete(t, tg.report(t))
	if tot.Copied != 0 || tot.FoundOnTarget != b.total() {
		t.Errorf("run without state: %d copied, %d found on target, want 0 and %d", tot.Copied, tot.FoundOnTarget, b.total())
	}
	tg.checkExactlyOnce(t)
}

// TestFaultsKillBeforeWatermarkThenStateLost kills the command between an
// importMime and its PATCH, as TestFaultsKillBeforeWatermark does, then
// deletes the state at once, before any run could repair the unstamped
// item: the next run, without state, finds it by its Message-ID in the
// listing of the target folder (exchange.Mailbox.ListItems), stamps it
// and copies nothing twice.
func TestFaultsKillBeforeWatermarkThenStateLost(t *testing.T) {
	t.Parallel()
	b, tg, args, all := killBeforeFirstPatch(t)
	if err := os.Remove(tg.statePath()); err != nil {
		t.Fatal(err)
	}
	code, c := runTool(t, args)
	if code != 0 {
		t.Errorf("run without state: exit %d\n%s", code, c.output())
	}
	tot := targetcheck.Complete(t, tg.report(t))
	t.Logf("run without state: %d copied, %d found on target", tot.Copied, tot.FoundOnTarget)
	// A request the killed run had sent may still have been carried out
	// after the count: at least what was counted is found.
	if tot.FoundOnTarget < all || tot.Copied+tot.FoundOnTarget != b.total() {
		t.Errorf("run without state: %d found on target, %d copied; want at least the %d items the killed run left found, and %d in all",
			tot.FoundOnTarget, tot.Copied, all, b.total())
	}
	tg.checkExactlyOnce(t)
	if n := tg.checkStamped(t, t.Errorf); n > 0 {
		t.Errorf("%d items carry no watermark", n)
	}
}

// TestFaultsStateDeleted deletes the state file between runs:
//
//   - after a complete run: the next run copies nothing, and adopts every
//     message it finds on the target (found on target);
//   - after a run killed while it built a large message (its upload
//     session open) and had created others: the next run adopts what is
//     complete, clears the partial copy, and copies the rest once.
func TestFaultsStateDeleted(t *testing.T) {
	t.Parallel()
	t.Run("after-complete", func(t *testing.T) {
		t.Parallel()
		b := newFaultBatch(t, 3, 10)
		tg := b.newTarget(t, nil)
		if code, c := runTool(t, tg.args()); code != 0 {
			t.Fatalf("first run: exit %d\n%s", code, c.output())
		}
		if err := os.Remove(tg.statePath()); err != nil {
			t.Fatal(err)
		}
		code, c := runTool(t, tg.args())
		if code != 0 {
			t.Errorf("run without state: exit %d\n%s", code, c.output())
		}
		tot := targetcheck.Complete(t, tg.report(t))
		if tot.Copied != 0 || tot.FoundOnTarget != b.total() {
			t.Errorf("run without state: %d copied, %d found on target, want 0 and %d", tot.Copied, tot.FoundOnTarget, b.total())
		}
		tg.checkExactlyOnce(t)
	})
	t.Run("after-kill", func(t *testing.T) {
		t.Parallel()
		b := newFaultBatch(t, 3, 10, 3<<20+1000)
		tg := b.newTarget(t, nil)
		c := startTool(t, tg.args())
		tg.front.arm(killPoint("upload-session"), 2, true, c.kill) // the second upload session
		c.wait(t)
		if !tg.front.disarm() {
			t.Fatalf("the run ended before its second upload session\n%s", c.output())
		}
		all, complete := tg.items()
		t.Logf("killed: the targets hold %d items, %d complete, of %d", all, complete, b.total())
		if err := os.Remove(tg.statePath()); err != nil {
			t.Fatal(err)
		}
		code, c := runTool(t, tg.args())
		if code != 0 {
			t.Errorf("run without state: exit %d\n%s", code, c.output())
		}
		tot := targetcheck.Complete(t, tg.report(t))
		if tot.FoundOnTarget == 0 {
			t.Errorf("run without state: nothing found on target")
		}
		t.Logf("run without state: %d copied, %d found on target", tot.Copied, tot.FoundOnTarget)
		tg.checkExactlyOnce(t)
	})
}

// boltMeta reads the meta page at off of a bbolt file (go.etcd.io/bbolt's
// layout: a 16-byte page header, then magic, version, page size, flags,
// the root bucket (16 bytes), the freelist's page, the high-water mark
// (pgid) and the transaction id, little-endian): its page size,
// high-water mark and transaction id.
func boltMeta(b []byte, off int) (pageSize, pgid, txid uint64) {
	m := b[off+16:]
	return uint64(binary.LittleEndian.Uint32(m[8:])), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:])
}

// TestFaultsStateDamaged damages the state file after a run killed
// half-way, as a broken disk or file system could: the last page in use
// zeroed or overwritten with garbage, or the file cut short (by a page,
// or in the middle of its last page). The next run must either open the
// file and complete, or fail at once with the boltstate.ErrCorrupt
// message, which says that deleting the file is safe; the file is then
// deleted, and the run after it rebuilds the state from the target.
// Either way every message ends up in its target exactly once.
//
// A crash cannot tear a record otherwise: bbolt writes a transaction's
// pages where no page in use is, and its meta page (the commit, with a
// checksum) last; a torn meta page leaves the previous transaction in
// force, and the Begins of the torn one had not returned, so no Put
// depended on them. Tearing a meta page after the fact cannot reproduce
// that (Puts made after it was written would lose their Begins), so the
// suite leaves it to SIGKILL (TestFaultsKill) and to bbolt's own tests.
func TestFaultsStateDamaged(t *testing.T) {
	t.Parallel()
	seed := faultSeed(t)
	b := newFaultBatch(t, 3, 20)
	for i, tc := range []struct {
		name   string
		damage func(f []byte, pageSize, last int) []byte // last: the offset of the last page in use
	}{
		{"zeroed-last-page", func(f []byte, ps, last int) []byte {
			clear(f[last : last+ps])
			return f
		}},
		{"garbage-last-page", func(f []byte, ps, last int) []byte {
			var key [32]byte
			binary.LittleEndian.PutUint64(key[:], seed)
			rand.NewChaCha8(key).Read(f[last : last+ps])
			return f
		}},
		{"cut-last-page", func(f []byte, ps, last int) []byte { return f[:last] }},
		{"cut-mid-page", func(f []byte, ps, last int) []byte { return f[:last+ps/2+7] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			c := startTool(t, tg.args())
			tg.front.arm(killPoint("create"), 25+5*i, true, c.kill)
			c.wait(t)
			if !tg.front.disarm() {
				t.Fatalf("the run ended before it was killed\n%s", c.output())
			}
			f, err := os.ReadFile(tg.statePath())
			if err != nil {
				t.Fatal(err)
			}
			size := len(f)
			ps0, pgid0, tx0 := boltMeta(f, 0)
			_, pgid1, tx1 := boltMeta(f, int(ps0))
			ps, pgid := int(ps0), pgid0
			if tx1 > tx0 {
				pgid = pgid1
			}
			last := (int(pgid) - 1) * ps
			f = tc.damage(f, ps, last)
			t.Logf("state: %d bytes, %d pages in use, transaction %d; damaged at byte %d: %d bytes left", size, pgid, max(tx0, tx1), last, len(f))
			if err := os.WriteFile(tg.statePath(), f, 0o600); err != nil {
				t.Fatal(err)
			}
			before := tg.front.requests.Load()
			code, c := runTool(t, tg.args())
			switch {
			case code == 0:
				t.Logf("the damaged state opened, and the run completed")
			case strings.Contains(c.stderr.String(), "is damaged and cannot be read") && strings.Contains(c.stderr.String(), "deleting it is safe"):
				t.Logf("the damaged state was refused after %d Graph requests: %s", tg.front.requests.Load()-before, strings.TrimSpace(c.stderr.String()))
				if err := os.Remove(tg.statePath()); err != nil {
					t.Fatal(err)
				}
				code, c = runTool(t, tg.args())
				if code != 0 {
					t.Fatalf("run after deleting the state: exit %d\n%s", code, c.output())
				}
			default:
				t.Fatalf("run on the damaged state: exit %d, neither complete nor refused as damaged\n%s", code, c.output())
			}
			tot := targetcheck.Complete(t, tg.report(t))
			t.Logf("%d copied, %d already copied, %d repaired, %d found on target", tot.Copied, tot.AlreadyCopied, tot.Repaired, tot.FoundOnTarget)
			tg.checkExactlyOnce(t)
		})
	}
}

// TestFaultsDiskFull denies the state room on disk half-way through a
// run: the command runs with RLIMIT_FSIZE (ulimit -f) at the size its
// state file has once created, so that the first time bbolt grows the
// file the write fails (EFBIG, which takes the path of a full disk's
// ENOSPC in bbolt and boltstate: a failed write or ftruncate). The run
// stops with the error, non-zero; the rerun, with room, completes, and
// every message is in its target exactly once.
func TestFaultsDiskFull(t *testing.T) {
	t.Parallel()
	b := newFaultBatch(t, 3, 60)
	tg := b.newTarget(t, nil)
	const limit = 64 << 10
	code, c := runTool(t, tg.args(), "IMAP2EXCHANGE_FSIZE="+strconv.Itoa(limit))
	all, complete := tg.items()
	t.Logf("run with the state limited to %d bytes: exit %d; the targets hold %d items, %d complete, of %d", limit, code, all, complete, b.total())
	if code == 0 {
		t.Fatalf("the run completed within the limit: the state never grew past %d bytes; raise the batch\n%s", limit, c.output())
	}
	if !strings.Contains(c.output(), "file too large") {
		t.Errorf("the run does not say the state could not be written\n%s", c.output())
	}
	if complete == 0 {
		t.Errorf("nothing was copied before the state was full")
	}
	if fi, err := os.Stat(tg.statePath()); err == nil && fi.Size() > limit {
		t.Errorf("state of %d bytes, over the limit of %d", fi.Size(), limit)
	}
	code, c = runTool(t, tg.args())
	if code != 0 {
		t.Errorf("rerun: exit %d\n%s", code, c.output())
	}
	targetcheck.Complete(t, tg.report(t))
	tg.checkExactlyOnce(t)
}

// TestFaultsTwoProcesses starts a second command on the state of one that
// runs: the second fails at once (the state is locked), having sent
// Graph nothing, and the first completes, every message once.
func TestFaultsTwoProcesses(t *testing.T) {
	t.Parallel()
	b := newFaultBatch(t, 3, 20)
	// Latency makes the first run last a second or two.
	tg := b.newTarget(t, &exchangetest.Options{Latency: 25 * time.Millisecond})
	first := startTool(t, tg.args())
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(first.stdout.String(), "Migrating") {
		if time.Now().After(deadline) {
			t.Fatalf("the first run did not start\n%s", first.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The second reaches Graph through a front of its own, to count its
	// requests.
	second := &killFront{g: tg.g}
	srv := httptest.NewServer(second)
	defer srv.Close()
	args := tg.args()
	for i := range args {
		if args[i] == tg.url {
			args[i] = srv.URL
		}
	}
	start := time.Now()
	code, c := runTool(t, args)
	took := time.Since(start)
	select {
	case <-first.done:
		t.Fatalf("the first run ended before the second did: the test proves nothing\n%s", first.output())
	default:
	}
	if code == 0 || !strings.Contains(c.stderr.String(), "in use by another process") {
		t.Errorf("second process: exit %d, want a failure saying the state is in use\n%s", code, c.output())
	}
	if took > 5*time.Second {
		t.Errorf("the second process took %v to fail", took)
	}
	if n := second.requests.Load(); n != 0 {
		t.Errorf("the second process sent %d Graph requests", n)
	}
	t.Logf("the second process failed in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(c.stderr.String()))
	if code := first.wait(t); code != 0 {
		t.Errorf("first process: exit %d\n%s", code, first.output())
	}
	targetcheck.Complete(t, tg.report(t))
	tg.checkExactlyOnce(t)
}
