package exchange_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// The benchmarks migrate one mailbox from migratetest.NewSource into the
// emulator through the migrate Engine (4 Puts in flight) and the real
// msgraph-sdk-go client:
//
//	go test -run '^$' -bench . ./exchange
//
// BenchmarkBudgetSmall and BenchmarkBudgetLarge run against the
// emulator's documented budgets with time scaled down, the client pacing
// itself to the same scaled budget, and report
//
//   - budget%: the achieved share of the binding budget (requests per
//     window for 10 KB messages, upload bytes per window for 500 KB ones),
//     measured over the whole migration, start-up included;
//   - throttled%: the share of requests the emulator answered 429.
//
// BenchmarkImport runs without budgets and reports msgs/s and the
// allocations per message, client and emulator together (they share the
// process).

// benchMessage returns a message of about size bytes with a unique
// Message-ID; pad is shared between messages to spare memory.
func benchMessage(i int, pad []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bob <bob@example.org>\r\nTo: Alice <alice@contoso.com>\r\nSubject: bench %d\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\nMessage-ID: <bench-%d@mailferry.test>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", i, i)
	b.Write(pad)
	return b.Bytes()
}

func benchFixture(n, size int) *migratetest.Fixture {
	line := []byte("lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiu\r\n")
	pad := bytes.Repeat(line, size/len(line))
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for i := range n {
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{
			Raw: benchMessage(i, pad), Flags: []migrate.Flag{migrate.FlagSeen},
			InternalDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
		})
	}
	return fx
}

// scaledBudget is the client's Budget for the emulator's budget with its
// windows divided by scale.
func scaledBudget(b *exchangetest.Budget, scale float64) *exchange.Budget {
	return &exchange.Budget{
		MaxConcurrentRequests:   b.MaxConcurrentRequests,
		MaxRequestsPerWindow:    b.MaxRequestsPerWindow,
		RequestWindow:           time.Duration(float64(exchangetest.RequestWindow) / scale),
		MaxUploadBytesPerWindow: b.MaxUploadBytesPerWindow,
		UploadWindow:            time.Duration(float64(exchangetest.UploadWindow) / scale),
	}
}

type benchRun struct {
	elapsed time.Duration
	stats   exchangetest.Stats
	copied  int
}

// migrateOnce migrates fx into a fresh emulator and mailbox.
func migrateOnce(b *testing.B, fx *migratetest.Fixture, emulated *exchangetest.Budget, scale float64) benchRun {
	b.Helper()
	const user = "bench@contoso.com"
	srv := exchangetest.NewServer(&exchangetest.Options{Budget: emulated, TimeScale: scale})
	defer srv.Close()
	srv.AddMailbox(user)
	budget := &exchange.Budget{} // no pacing
	if emulated != nil {
		budget = scaledBudget(emulated, scale)
	}
	c, err := exchange.NewClient(&exchange.Options{
		Credential: exchange.StaticToken("bench"), BaseURL: srv.URL(), Transport: srv.Client().Transport, Budget: budget,
		ReceivedDates: exchange.ReceivedDateAtImport, // importMime and its PATCH, as BENCHMARKS.md measures
	})
	if err != nil {
		b.Fatal(err)
	}
	eng := migrate.NewEngine(&migrate.Options{MaxPutsPerMailbox: 4})
	src := migratetest.NewSource(fx)
	start := time.Now()
	rep := eng.Run(b.Context(), migrate.Job{Mailbox: user, Source: src, Sink: c.Mailbox(user)})
	run := benchRun{elapsed: time.Since(start), stats: srv.Stats(), copied: rep.Totals().Copied}
	if rep.Lost() || run.copied != fx.Count() {
		b.Fatalf("migration incomplete: %d of %d copied: %+v", run.copied, fx.Count(), rep.Totals())
	}
	return run
}

func benchBudget(b *testing.B, size, count int, scale float64, uploadBound bool) {
	fx := benchFixture(count, size)
	emulated := exchangetest.DefaultBudget()
	var run benchRun
	b.ResetTimer()
	for range b.N {
		run = migrateOnce(b, fx, emulated, scale)
	}
	b.StopTimer()
	var share float64
	if uploadBound {
		window := exchangetest.UploadWindow.Seconds() / scale
		share = float64(run.stats.UploadBytes) / run.elapsed.Seconds() * window / float64(emulated.MaxUploadBytesPerWindow)
	} else {
		window := exchangetest.RequestWindow.Seconds() / scale
		share = float64(run.stats.Requests) / run.elapsed.Seconds() * window / float64(emulated.MaxRequestsPerWindow)
	}
	b.ReportMetric(100*share, "budget%")
	b.ReportMetric(100*float64(run.stats.Throttled)/float64(run.stats.Requests), "throttled%")
	b.ReportMetric(float64(run.copied)/run.elapsed.Seconds(), "msgs/s")
	b.ReportMetric(run.elapsed.Seconds(), "s/mailbox")
}

// BenchmarkBudgetSmall migrates 7,000 messages of 10 KB (14,000 requests:
// importMime and a PATCH each) at time scale 60: 10,000 requests per 10 s
// window, 1,000 requests per second (under half of what client and
// emulator manage together on 2 cores without a budget), for about 14 s,
// so that the emulator's sliding window fills and is really tested; the
// request budget binds.
func BenchmarkBudgetSmall(b *testing.B) {
	benchBudget(b, 10<<10, 7000, 60, false)
}

// BenchmarkBudgetLarge migrates 500 messages of 500 KB (about 330 MB of
// base64 upload) at time scale 60: 150 MB per 5 s window, for about 11 s,
// over two windows; the upload budget binds.
func BenchmarkBudgetLarge(b *testing.B) {
	benchBudget(b, 500<<10, 500, 60, true)
}

// BenchmarkImport migrates 10 KB messages without budgets and reports
// messages per second and allocations per message.
func BenchmarkImport(b *testing.B) {
	const count = 1000
	fx := benchFixture(count, 10<<10)
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		total += migrateOnce(b, fx, nil, 1).elapsed
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(count*b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(count*b.N), "allocs/msg")
}
