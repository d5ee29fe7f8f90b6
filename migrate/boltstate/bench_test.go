package boltstate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// fixture returns a mailbox of folders × perFolder small messages (about
// 250 bytes each), all \Seen. The first folder is INBOX, the others
// "Folder N", so that UIDVALIDITY is 1000+N on a migratetest.Source.
func fixture(folders, perFolder int) *migratetest.Fixture {
	fx := &migratetest.Fixture{}
	day := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	for f := range folders {
		ff := migratetest.FixtureFolder{Path: []string{folderName(f)}}
		for n := range perFolder {
			raw := fmt.Sprintf("From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: Message %d of folder %d\r\n"+
				"Message-ID: <%d.%d@example.org>\r\nDate: Mon, 1 Jan 2024 09:00:00 +0000\r\n\r\nHello %d.\r\n", n, f, f, n, n)
			ff.Messages = append(ff.Messages, migratetest.FixtureMessage{Raw: []byte(raw),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: day.Add(time.Duration(n) * time.Minute)})
		}
		fx.Folders = append(fx.Folders, ff)
	}
	return fx
}

func folderName(f int) string {
	if f == 0 {
		return "INBOX"
	}
	return fmt.Sprintf("Folder %d", f)
}

// BenchmarkEngine copies 20,000 small messages (8 mailboxes of 4 folders
// of 625) from migratetest Sources to migratetest Sinks through the
// Engine, with a MemoryState, with a State of this package, and with one
// whose Commits wait for their transaction as Begins do (the choice not
// taken); with the Engine's default concurrency (4 mailboxes, 4 Puts
// each: 16 Puts in flight) and with the 8 mailboxes at once (32).
// begins/tx is how many Begins shared a transaction, µs/tx how long one
// took to write and sync.
//
//	go test -run '^$' -bench BenchmarkEngine -benchtime 5x ./migrate/boltstate/
func BenchmarkEngine(b *testing.B) {
	const mailboxes, folders, perFolder = 8, 4, 625
	fx := fixture(folders, perFolder)
	var sources []*migratetest.Source
	for range mailboxes {
		sources = append(sources, migratetest.NewSource(fx))
	}
	total := mailboxes * folders * perFolder
	for _, maxMailboxes := range []int{4, 8} {
		for _, kind := range []string{"memory", "bolt", "bolt-sync-commits"} {
			b.Run(fmt.Sprintf("mailboxes=%d/state=%s", maxMailboxes, kind), func(b *testing.B) {
				var elapsed, writing time.Duration
				var txs, begins int
				for i := 0; b.Loop(); i++ {
					var st migrate.State = migrate.NewMemoryState()
					var bs *boltstate.State
					if kind != "memory" {
						bs = open(b, filepath.Join(b.TempDir(), fmt.Sprintf("state-%d.db", i)))
						boltstate.SetSyncCommits(bs, kind == "bolt-sync-commits")
						st = bs
					}
					var jobs []migrate.Job
					for m, src := range sources {
						jobs = append(jobs, migrate.Job{Mailbox: fmt.Sprintf("m%02d@example.com", m), Source: src, Sink: migratetest.NewSink()})
					}
					start := time.Now()
					rep := migrate.NewEngine(&migrate.Options{State: st, MaxMailboxes: maxMailboxes}).Run(b.Context(), jobs...)
					if bs != nil {
						must(b, bs.Close())
						t, n, d := boltstate.Transactions(bs)
						txs, begins, writing = txs+t, begins+n, writing+d
					}
					elapsed += time.Since(start)
					if tot := rep.Totals(); rep.Lost() || tot.Copied != total {
						b.Fatalf("copied %d of %d: %+v", tot.Copied, total, tot)
					}
				}
				b.ReportMetric(float64(total*b.N)/elapsed.Seconds(), "msgs/s")
				if txs > 0 {
					b.ReportMetric(float64(begins)/float64(txs), "begins/tx")
					b.ReportMetric(float64(writing.Microseconds())/float64(txs), "µs/tx")
				}
			})
		}
	}
}

// BenchmarkGroupSize measures Options.MaxChangesPerTransaction, for the
// figures in group.go. "puts": 16 writers (the Engine's default
// concurrency), each a Begin and a Commit per message, as the Engine's
// Puts do. "flags": 4 writers committing new flags to 10,000 records
// (a delta pass: Commits only, queued without waiting) while a fifth
// begins a message every millisecond, whose wait is what a large
// transaction costs.
//
//	go test -run '^$' -bench BenchmarkGroupSize ./migrate/boltstate/
func BenchmarkGroupSize(b *testing.B) {
	item := strings.Repeat("A", 152)
	flags := []migrate.Flag{migrate.FlagSeen}
	for _, max := range []int{1, 16, 64, 256, 1024, 4096, 16384} {
		b.Run(fmt.Sprintf("max=%d/puts", max), func(b *testing.B) {
			st, err := boltstate.Open(filepath.Join(b.TempDir(), "state.db"), &boltstate.Options{MaxChangesPerTransaction: max})
			must(b, err)
			defer st.Close()
			ctx := b.Context()
			var next atomic.Uint32
			lat := newLatencies()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					box := fmt.Sprintf("m%d", w%4)
					for {
						uid := next.Add(1)
						if int(uid) > b.N {
							return
						}
						sid := id("INBOX", 1, uid)
						t0 := time.Now()
						must(b, st.Begin(ctx, box, sid))
						lat.add(time.Since(t0))
						must(b, st.Commit(ctx, box, sid, item, flags))
					}
				})
			}
			wg.Wait()
			must(b, st.Sync(ctx))
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			lat.report(b, "begin")
		})
		b.Run(fmt.Sprintf("max=%d/flags", max), func(b *testing.B) {
			st, err := boltstate.Open(filepath.Join(b.TempDir(), "state.db"), &boltstate.Options{MaxChangesPerTransaction: max})
			must(b, err)
			defer st.Close()
			ctx := b.Context()
			const records = 10_000
			for uid := uint32(1); uid <= records; uid++ {
				for w := range 4 {
					must(b, st.Commit(ctx, fmt.Sprintf("m%d", w), id("INBOX", 1, uid), item, flags))
				}
			}
			must(b, st.Sync(ctx))
			lat := newLatencies()
			b.ResetTimer()
			start := time.Now()
			done := make(chan struct{})
			var begins sync.WaitGroup
			begins.Go(func() {
				for uid := uint32(records + 1); ; uid++ {
					select {
					case <-done:
						return
					case <-time.After(time.Millisecond):
					}
					t0 := time.Now()
					must(b, st.Begin(ctx, "other", id("INBOX", 1, uid)))
					lat.add(time.Since(t0))
				}
			})
			var wg sync.WaitGroup
			other := []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged}
			for w := range 4 {
				wg.Go(func() {
					box := fmt.Sprintf("m%d", w)
					for n := w; n < b.N; n += 4 {
						uid := uint32(n/4%records + 1)
						f := flags
						if n/4/records%2 == 0 {
							f = other
						}
						must(b, st.Commit(ctx, box, id("INBOX", 1, uid), item, f))
					}
				})
			}
			wg.Wait()
			must(b, st.Sync(ctx))
			elapsed := time.Since(start)
			close(done)
			begins.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			lat.report(b, "begin")
		})
	}
}

// latencies collects durations, safe for concurrent use.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, name string) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), name+"-p99-µs")
}

// peakHeap samples the bytes of heap objects (live and not yet collected)
// every millisecond until stop is called, which returns the highest.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak.Load()
	}
}

const millionMailboxes, millionFolders, millionPerFolder = 20, 10, 5000

// fillMillion fills a state file with 1,000,000 committed messages: 20
// mailboxes of 10 folders of 5,000, each with an item id of Exchange's
// length (152 bytes), named as fixture(10, 5000) in a migratetest.Source
// names them.
func fillMillion(b *testing.B, path string) {
	st := open(b, path)
	ctx := context.Background()
	start := time.Now()
	item := strings.Repeat("A", 140)
	flags := []migrate.Flag{migrate.FlagSeen}
	for m := range millionMailboxes {
		box := fmt.Sprintf("m%02d@example.com", m)
		for f := range millionFolders {
			for uid := uint32(1); uid <= millionPerFolder; uid++ {
				must(b, st.Commit(ctx, box, id(folderName(f), uint32(1000+f), uid), fmt.Sprintf("%s%012d", item, uid), flags))
			}
		}
	}
	must(b, st.Close())
	info, err := os.Stat(path)
	must(b, err)
	b.Logf("filled 1,000,000 records in %v: %d MB", time.Since(start).Round(time.Millisecond), info.Size()>>20)
}

// BenchmarkMillion measures the heap of a process whose State holds
// 1,000,000 messages: "load" reads every folder of every mailbox, one
// after the other, as a batch does; "delta" runs the Engine over one
// mailbox of 50,000 messages already copied (a full listing compared
// with the State). Peak heap is sampled every millisecond (objects live
// or not yet collected, GOGC=100).
//
//	go test -run '^$' -bench BenchmarkMillion -benchtime 3x ./migrate/boltstate/
func BenchmarkMillion(b *testing.B) {
	path := filepath.Join(b.TempDir(), "million.db")
	fillMillion(b, path)
	b.Run("load", func(b *testing.B) {
		st := open(b, path)
		defer st.Close()
		ctx := b.Context()
		runtime.GC()
		stop := peakHeap()
		for b.Loop() {
			n := 0
			for m := range millionMailboxes {
				for f := range millionFolders {
					fs, err := st.Load(ctx, fmt.Sprintf("m%02d@example.com", m), folderName(f))
					must(b, err)
					n += len(fs.Records)
				}
			}
			if n != millionMailboxes*millionFolders*millionPerFolder {
				b.Fatalf("loaded %d records", n)
			}
		}
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(millionMailboxes*millionFolders*millionPerFolder*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("delta", func(b *testing.B) {
		st := open(b, path)
		defer st.Close()
		src := migratetest.NewSource(fixture(millionFolders, millionPerFolder))
		runtime.GC()
		stop := peakHeap()
		for b.Loop() {
			job := migrate.Job{Mailbox: "m00@example.com", Source: src, Sink: migratetest.NewSink()}
			rep := migrate.NewEngine(&migrate.Options{State: st}).Run(b.Context(), job)
			if tot := rep.Totals(); rep.Lost() || tot.Copied != 0 || tot.AlreadyCopied != millionFolders*millionPerFolder {
				b.Fatalf("delta pass: %+v", tot)
			}
		}
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
	})
}
