package mailferry_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

const target = "alice@contoso.com"

// world is a real Dovecot seeded with the sample mailbox, and the Graph
// emulator reached through the real msgraph-sdk-go client.
type world struct {
	fx    *migratetest.Fixture
	imap  *dovecottest.Server
	graph *exchangetest.Server
	job   migrate.Job
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fx := migratetest.Sample()
	dc := dovecottest.Start(t, &dovecottest.Options{Users: map[string]string{"alice": "dovecot-pw"}})
	if err := imapsrctest.Seed(dc.Addr(), "alice", "dovecot-pw", fx); err != nil {
		t.Fatal(err)
	}
	graph, sink := newGraph(t, nil, nil)
	src := newSource(t, &imapsrc.Options{Addr: dc.Addr(), Username: "alice", Password: "dovecot-pw"})
	return &world{fx: fx, imap: dc, graph: graph, job: migrate.Job{Mailbox: target, Source: src, Sink: sink}}
}

// newGraph starts the Graph emulator (emulated by eopts; nil: defaults)
// with target's mailbox and returns it with the sink for that mailbox: the
// real msgraph-sdk-go client over real HTTP, configured by opts (nil:
// defaults; Credential and BaseURL are set here).
func newGraph(t *testing.T, eopts *exchangetest.Options, opts *exchange.Options) (*exchangetest.Server, *exchange.Mailbox) {
	t.Helper()
	graph := exchangetest.NewServer(eopts)
	t.Cleanup(graph.Close)
	graph.AddMailbox(target)
	var o exchange.Options
	if opts != nil {
		o = *opts
	}
	o.Credential, o.BaseURL = exchange.StaticToken("e2e"), graph.URL()
	client, err := exchange.NewClient(&o)
	if err != nil {
		t.Fatal(err)
	}
	return graph, client.Mailbox(target)
}

// newSource returns an IMAP Source for a loopback test server (always
// Plaintext), closed when the test ends.
func newSource(t *testing.T, opts *imapsrc.Options) *imapsrc.Source {
	t.Helper()
	o := *opts
	o.Security = imapsrc.Plaintext
	src := imapsrc.New(&o)
	t.Cleanup(func() { src.Close() })
	return src
}

func (w *world) check(t *testing.T) {
	t.Helper()
	for _, d := range w.graph.CheckFixture(target, w.fx) {
		t.Error(d)
	}
}

// TestEndToEnd migrates a real Dovecot mailbox into the emulated Exchange
// Online mailbox and proves, message by message (CheckFixture), that each
// arrived once, in its folder, with its read, flagged and draft state and
// its content: byte-identical where it was imported, with its Message-ID,
// subject and received date where Exchange rebuilt it. A second run
// copies nothing.
func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	state, err := boltstate.Open(filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	eng := migrate.NewEngine(&migrate.Options{State: state})
	ctx := context.Background()

	rep := eng.Run(ctx, w.job)
	if rep.Lost() {
		t.Fatalf("first run: %s %s %+v", rep.Mailboxes[0].Status, rep.Mailboxes[0].Error, rep.Mailboxes[0].Problems)
	}
	if got := rep.Totals().Copied; got != w.fx.Count() {
		t.Errorf("first run copied %d, want %d", got, w.fx.Count())
	}
	w.check(t)
	before := w.graph.Stats()

	rep = eng.Run(ctx, w.job)
	if tot := rep.Totals(); tot.Copied != 0 || tot.AlreadyCopied != w.fx.Count() || rep.Lost() {
		t.Errorf("second run: %+v", tot)
	}
	w.check(t)
	for route, n := range w.graph.Stats().ByRoute {
		if n > 0 && (route == "POST /users/{user}/mailFolders/{id}/importMime" || route == "POST /users/{user}/mailFolders/{id}/messages") {
			t.Logf("%s: %d in all", route, n)
		}
	}
	checkNoOpRun(t, len(w.fx.Folders), before, w.graph.Stats())
}

// checkNoOpRun checks what a run with nothing to copy asked of Graph,
// from the emulator's counters before and after it: nothing but folder
// look-ups, at most one per folder of the source. The State says every
// message is copied and CONDSTORE that no flag changed, so the run has
// nothing to write (no importMime, no create, no upload session, no
// PATCH, no $batch, no folder created or deleted) and no message to read
// (no watermark or Message-ID search, no listing); all it may need of the
// target is each folder's id, which EnsureFolder looks up once per run
// at most (a GET of the well-known folder, or of the folder by name under
// its parent) and caches in the Mailbox. The received-date probe and its
// clean-up are once per Client, done by the first run.
func checkNoOpRun(t *testing.T, folders int, before, after exchangetest.Stats) {
	t.Helper()
	lookups := 0
	for route, n := range after.ByRoute {
		n -= before.ByRoute[route]
		if n == 0 {
			continue
		}
		if !strings.HasPrefix(route, "GET /users/{user}/mailFolders") || strings.Contains(route, "/messages") {
			t.Errorf("the run with nothing to copy sent %s %d times", route, n)
			continue
		}
		lookups += n
	}
	if lookups > folders {
		t.Errorf("the run with nothing to copy made %d folder look-ups for %d folders", lookups, folders)
	}
	if n := after.Requests - before.Requests; n != lookups {
		t.Errorf("the run with nothing to copy made %d requests, %d of them folder look-ups", n, lookups)
	}
	t.Logf("the run with nothing to copy made %d requests for %d folders", after.Requests-before.Requests, folders)
}

// TestEndToEndCrashBetweenPutAndCommit shows that a run killed after
// Exchange stored a message but before the journal recorded it, then run
// again, leaves exactly one copy of every message: the watermark finds it.
func TestEndToEndCrashBetweenPutAndCommit(t *testing.T) {
	w := newWorld(t)
	rep := migratetest.CrashAndResume(t, w.job, func(id migrate.SourceID) bool { return id.Folder == "INBOX" && id.UID == 3 }, nil)
	if rep.Lost() {
		t.Fatalf("rerun: %s %s %+v", rep.Mailboxes[0].Status, rep.Mailboxes[0].Error, rep.Mailboxes[0].Problems)
	}
	// UID 3 at least; Puts that were in flight beside it when the run
	// stopped may have reached Exchange uncommitted too.
	if got := rep.Totals().Repaired; got < 1 {
		t.Errorf("rerun repaired %d, want at least 1", got)
	}
	w.check(t)
}
