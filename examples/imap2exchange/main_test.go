package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/targetcheck"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// TestBatch runs the command on a CSV of two mailboxes, against an
// in-memory IMAP server and the Graph emulator, twice.
func TestBatch(t *testing.T) {
	users := map[string]string{"alice": "alice-imap-secret", "bob": "bob-imap-secret"}
	imapSrv, err := imapsrctest.StartMemServer(users)
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	fx := migratetest.Sample()
	for u, pw := range users {
		if err := imapsrctest.Seed(imapSrv.Addr(), u, pw, fx); err != nil {
			t.Fatal(err)
		}
	}
	graph := exchangetest.NewServer(nil)
	defer graph.Close()
	graph.AddMailbox("alice@contoso.com")
	graph.AddMailbox("bob@contoso.com")

	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\n"+
		"alice@contoso.com,alice,alice-imap-secret\n"+
		"bob@contoso.com,bob,bob-imap-secret\n"), 0o600)
	args := []string{"-csv", csvPath, "-imap", imapSrv.Addr(), "-security", "plaintext", "-graph-url", graph.URL(),
		"-state", filepath.Join(dir, "journal"), "-report", filepath.Join(dir, "report.json"), "-report-csv", filepath.Join(dir, "report.csv")}
	// A report left by an earlier run, readable by everyone, is replaced
	// by one readable by its owner alone.
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "report.json"), 0o644) // whatever the umask
	env := func(k string) string {
		if k == "MAILFERRY_GRAPH_TOKEN" {
			return "graph-token-value"
		}
		return ""
	}
	var out, errs bytes.Buffer
	if code := run(context.Background(), args, &out, &errs, env); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	for _, box := range []string{"alice@contoso.com", "bob@contoso.com"} {
		for _, d := range graph.CheckFixture(box, fx) {
			t.Errorf("%s: %s", box, d)
		}
	}
	var rep migrate.Report
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Mailboxes) != 2 || rep.Totals().Copied != 2*fx.Count() {
		t.Errorf("report.json: %v, %+v", err, rep.Totals())
	}
	if csv, _ := os.ReadFile(filepath.Join(dir, "report.csv")); !strings.Contains(string(csv), "bob@contoso.com,completed,INBOX,Inbox,4,4,") {
		t.Errorf("report.csv:\n%s", csv)
	}
	checkPrivate(t, dir, "report.json", "report.csv")
	all := out.String() + errs.String()
	for _, secret := range []string{"alice-imap-secret", "bob-imap-secret", "graph-token-value"} {
		if strings.Contains(all, secret) {
			t.Errorf("output shows a secret %q", secret)
		}
	}

	// The second run is an incremental sync with nothing to do.
	out.Reset()
	if code := run(context.Background(), args, &out, &errs, env); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out.String())
	}
	b, _ = os.ReadFile(filepath.Join(dir, "report.json"))
	rep = migrate.Report{}
	json.Unmarshal(b, &rep)
	if tot := rep.Totals(); tot.Copied != 0 || tot.AlreadyCopied != 2*fx.Count() {
		t.Errorf("second run: %+v", tot)
	}
}

func TestProbe(t *testing.T) {
	imapSrv, err := imapsrctest.StartMemServer(map[string]string{"alice": "alice-imap-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	fx := migratetest.Sample()
	if err := imapsrctest.Seed(imapSrv.Addr(), "alice", "alice-imap-secret", fx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\n"+
		"alice@contoso.com,alice,alice-imap-secret\n"+
		"bob@contoso.com,bob,wrong-imap-secret\n"), 0o600)
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"-probe", "-csv", csvPath, "-imap", imapSrv.Addr(), "-security", "plaintext"}, &out, &errs, func(string) string { return "" })
	if code != 1 {
		t.Errorf("exit %d with a failing mailbox", code)
	}
	if !strings.Contains(out.String(), "alice@contoso.com: ok (plaintext, LOGIN): 10 folders, 15 messages") ||
		!strings.Contains(out.String(), "bob@contoso.com: FAILED") || strings.Contains(out.String()+errs.String(), "imap-secret") {
		t.Errorf("probe output:\n%s%s", out.String(), errs.String())
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\nnot-an-address,alice,hunter2hunter2\n"), 0o600)
	var out, errs bytes.Buffer
	app := []string{"-tenant", "contoso", "-client-id", "app"}
	code := run(context.Background(), append([]string{"-csv", csvPath, "-imap", "127.0.0.1:1"}, app...), &out, &errs, func(string) string { return "" })
	if code != 1 || !strings.Contains(errs.String(), "line 2") || strings.Contains(errs.String(), "hunter2") {
		t.Errorf("bad CSV: exit %d, stderr %q", code, errs.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"-imap", "x:993"}, &out, &errs, func(string) string { return "" }); code != 2 {
		t.Errorf("missing -csv: exit %d", code)
	}
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\na@b.c,alice,pw\n"), 0o600)
	// Neither a token nor the app: a usage error.
	errs.Reset()
	code = run(context.Background(), []string{"-csv", csvPath, "-imap", "127.0.0.1:1"}, &out, &errs, func(string) string { return "" })
	if code != 2 || !strings.Contains(errs.String(), "MAILFERRY_GRAPH_TOKEN") {
		t.Errorf("no credentials: exit %d, stderr %q", code, errs.String())
	}
	// The app, but neither its secret nor its certificate.
	errs.Reset()
	code = run(context.Background(), append([]string{"-csv", csvPath, "-imap", "127.0.0.1:1"}, app...), &out, &errs, func(string) string { return "" })
	if code != 1 || !strings.Contains(errs.String(), "MAILFERRY_CLIENT_SECRET") {
		t.Errorf("no secret: exit %d, stderr %q", code, errs.String())
	}
}

// checkPrivate fails t unless each of names in dir is readable by its
// owner only, and dir holds no temporary file left by writing them.
func checkPrivate(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestMain runs the command itself, as a child process of a test, when
// IMAP2EXCHANGE_MAIN is set (see TestSIGTERM). IMAP2EXCHANGE_FSIZE, when
// set too, limits the size of the files it writes (RLIMIT_FSIZE, as
// ulimit -f does; see TestFaultsDiskFull).
func TestMain(m *testing.M) {
	if os.Getenv("IMAP2EXCHANGE_MAIN") == "1" {
		if v := os.Getenv("IMAP2EXCHANGE_FSIZE"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err == nil {
				err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "IMAP2EXCHANGE_FSIZE:", err)
				os.Exit(3)
			}
		}
		main()
		return
	}
	moreParallel()
	os.Exit(m.Run())
}

// moreParallel lets 8 parallel tests run at once unless -test.parallel
// says otherwise: the fault suite's tests mostly wait (the command paces
// uploads to Exchange Online's budget, 0.5 MB/s per mailbox), so the
// default, one per CPU, would make the package take their sum.
func moreParallel() {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
}

// blockingGraph serves the emulator g, but once after messages of user
// are complete there (stamped with their watermark: the last request of
// any Put), it holds every further request until its client goes away:
// a migration stuck half-way, with some messages copied whatever order
// the Puts and the received-date probe took.
type blockingGraph struct {
	g       *exchangetest.Server
	user    string
	after   int
	blocked chan struct{} // closed when the first request is held
	release chan struct{} // closed to let the requests held go
	once    sync.Once
}

// complete counts the messages of the mailbox that carry a watermark.
func (b *blockingGraph) complete() int {
	n := 0
	for _, m := range b.g.Messages(b.user) {
		if _, ok := m.ExtendedProperties[exchange.WatermarkProperty]; ok {
			n++
		}
	}
	return n
}

func (b *blockingGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.complete() >= b.after {
		// Read the body, so that the server notices the client leaving.
		io.Copy(io.Discard, r.Body)
		b.once.Do(func() { close(b.blocked) })
		select {
		case <-r.Context().Done():
		case <-b.release:
		}
		http.Error(w, "held", http.StatusServiceUnavailable)
		return
	}
	b.g.ServeHTTP(w, r)
}

// TestSignals runs the command as a child process, as systemd or
// Kubernetes (SIGTERM) or a user at a terminal (SIGINT, Ctrl-C) would,
// and stops it half-way through a batch, while Graph requests hang: it
// must exit promptly with status 1, having written its reports (readable
// by its owner only, the mailbox failed, stopped by the signal) and its
// state; a rerun then completes, every message in the target exactly
// once, none of those copied before the signal copied again.
func TestSignals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	t.Parallel()
	imapSrv, err := imapsrctest.StartMemServer(map[string]string{"alice": "alice-imap-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Close() }) // after the subtests
	fx := migratetest.Sample()
	if err := imapsrctest.Seed(imapSrv.Addr(), "alice", "alice-imap-secret", fx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"SIGTERM", syscall.SIGTERM}, {"SIGINT", syscall.SIGINT}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testSignal(t, tc.sig, imapSrv.Addr(), fx)
		})
	}
}

func testSignal(t *testing.T, sig syscall.Signal, imapAddr string, fx *migratetest.Fixture) {
	g := exchangetest.NewServer(nil)
	defer g.Close()
	g.AddMailbox("alice@contoso.com")
	bg := &blockingGraph{g: g, user: "alice@contoso.com", after: 2, blocked: make(chan struct{}), release: make(chan struct{})}
	graph := httptest.NewServer(bg)
	defer graph.Close()
	defer close(bg.release)

	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\nalice@contoso.com,alice,alice-imap-secret\n"), 0o600)
	args := []string{"-csv", csvPath, "-imap", imapAddr, "-security", "plaintext", "-graph-url", graph.URL,
		"-state", filepath.Join(dir, "state"), "-report", filepath.Join(dir, "report.json"), "-report-csv", filepath.Join(dir, "report.csv")}
	// -v: a line per message copied, so that the signal comes once the
	// command has taken some copies as done, whatever their order.
	c := startTool(t, append(args, "-v"), "MAILFERRY_GRAPH_TOKEN=graph-token-value")
	select {
	case <-bg.blocked:
	case <-c.done:
		t.Fatalf("the command ended before it was stopped: %v\n%s", c.err, c.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("the migration never reached the Graph requests it should hang on\n%s", c.output())
	}
	if !c.stdout.waitFor(" copied\n", bg.after, c.done) {
		t.Fatalf("the command ended before it reported %d messages copied\n%s", bg.after, c.output())
	}
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second): // a guard against a deadlock, not a measure of speed
		t.Fatalf("still running 20s after %v\n%s", sig, c.output())
	}
	t.Logf("exited %v after %v", c.err, time.Since(signalled).Round(time.Millisecond))
	if code := c.wait(t); code != 1 {
		t.Errorf("exit %d (%v), want exit status 1\n%s", code, c.err, c.output())
	}
	var rep migrate.Report
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("no report after %v: %v\n%s", sig, err, c.output())
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Mailboxes) != 1 {
		t.Fatalf("report.json: %v\n%s", err, b)
	}
	if mb := rep.Mailboxes[0]; mb.Status != migrate.StatusFailed || !strings.Contains(mb.Error, "signal") && !strings.Contains(mb.Error, "context canceled") {
		t.Errorf("report: mailbox %s: %s, %q; want failed, stopped by the signal", mb.Mailbox, mb.Status, mb.Error)
	}
	t.Logf("report: %s: %s", rep.Mailboxes[0].Status, rep.Mailboxes[0].Error)
	before := rep.Totals().Copied
	if before < 1 || before >= fx.Count() {
		t.Errorf("report: %d of %d copied before %v, want some", before, fx.Count(), sig)
	}
	if csv, err := os.ReadFile(filepath.Join(dir, "report.csv")); err != nil || !strings.Contains(string(csv), "alice@contoso.com,failed,") {
		t.Errorf("report.csv after %v: %v\n%s", sig, err, csv)
	}
	checkPrivate(t, dir, "report.json", "report.csv")
	if fi, err := os.Stat(filepath.Join(dir, "state")); err != nil || fi.Size() == 0 {
		t.Errorf("state after %v: %v", sig, err)
	}
	out := c.output()
	if !strings.Contains(out, "stopping") {
		t.Errorf("output does not say it is stopping:\n%s", out)
	}
	if strings.Contains(out, "alice-imap-secret") || strings.Contains(out, "graph-token-value") {
		t.Errorf("output shows a secret:\n%s", out)
	}

	// The rerun, with Graph answering, completes from the state: what
	// was copied before the signal is already there, the rest is copied
	// once (what was begun, its request held, is looked for first).
	code, c := runTool(t, setFlag(args, "-graph-url", g.URL()), "MAILFERRY_GRAPH_TOKEN=graph-token-value")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, c.output())
	}
	b, _ = os.ReadFile(filepath.Join(dir, "report.json"))
	rep = migrate.Report{}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	tot := targetcheck.Complete(t, &rep)
	if tot.AlreadyCopied != before || tot.Copied+tot.Repaired != fx.Count()-before {
		t.Errorf("rerun: %d already copied, %d copied, %d repaired; want %d already copied and %d copied or repaired",
			tot.AlreadyCopied, tot.Copied, tot.Repaired, before, fx.Count()-before)
	}
	for _, d := range g.CheckFixture("alice@contoso.com", fx) {
		t.Errorf("after the rerun: %s", d)
	}
}
