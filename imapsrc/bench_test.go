package imapsrc_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
)

// The mailbox the benchmarks read: one Dovecot per test binary, seeded
// once, with a folder per size ("Bench1000", "Bench10000").
var bench struct {
	once   sync.Once
	srv    *dovecottest.Server
	err    error
	seeded map[int]bool
	mu     sync.Mutex
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.srv != nil {
		bench.srv.Stop()
	}
	os.Exit(code)
}

// benchFolder returns the shared Dovecot's address and the name of a
// folder of n realistic ~5 KB messages, seeding it on first use.
func benchFolder(tb testing.TB, n int) (addr, folder string) {
	tb.Helper()
	bench.once.Do(func() {
		bench.srv, bench.err = dovecottest.Launch(&dovecottest.Options{Users: map[string]string{"alice": "secret"}})
		bench.seeded = map[int]bool{}
	})
	// Skipped without Dovecot, as dovecottest.Start does, and failed
	// under CI=true or for any other error.
	dovecottest.Require(tb, bench.err)
	folder = fmt.Sprintf("Bench%d", n)
	bench.mu.Lock()
	defer bench.mu.Unlock()
	if !bench.seeded[n] {
		start := time.Now()
		// Maildir files written directly: APPEND takes ~3 ms a message.
		writeMaildir(tb, bench.srv, folder, bigFixture(n).Folders[0].Messages)
		// Let Dovecot index the new files now, not in the first timed read.
		_, _, err := readBare(bench.srv.Addr(), folder, false, nil)
		require.NoError(tb, err)
		bench.seeded[n] = true
		tb.Logf("seeded %d messages in %v", n, time.Since(start))
	}
	return bench.srv.Addr(), folder
}

// heapPeak is the peak of HeapInuse over the samples taken. Reads take
// one every sampleEvery messages, in the middle of handling a message:
// at points of the work, not of the clock.
type heapPeak struct{ peak uint64 }

const sampleEvery = 50

func (h *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// each returns a per-message hook that samples every sampleEvery calls.
func (h *heapPeak) each() func() {
	n := 0
	return func() {
		if n++; n%sampleEvery == 0 {
			h.sample()
		}
	}
}

// readSource reads every message of folder the way the Engine does: the
// UIDs (4 bytes each), then Fetch in batches of migrate's default
// Options.MaxUIDsPerFetch, each body read to the end. It calls each (if
// not nil) after reading each body, inside the callback. It returns the
// messages and bytes read.
func readSource(ctx context.Context, src *imapsrc.Source, f migrate.Folder, each func()) (n int, bytes int64, err error) {
	const batch = 200 // the Engine's default MaxUIDsPerFetch
	uids, err := src.UIDs(ctx, f)
	if err != nil {
		return 0, 0, err
	}
	for start := 0; start < len(uids); start += batch {
		err := src.Fetch(ctx, f, uids[start:min(start+batch, len(uids))], func(m *migrate.Message) error {
			k, err := io.Copy(io.Discard, m.Body)
			n++
			bytes += k
			if each != nil {
				each()
			}
			return err
		})
		if err != nil {
			return n, bytes, err
		}
	}
	return n, bytes, nil
}

// readBare reads every message of folder with one bare go-imap
// UID FETCH 1:*: with the metadata a migration needs, or bodies only. It
// calls each (if not nil) after reading each body.
func readBare(addr, folder string, bodiesOnly bool, each func()) (n int, bytes int64, err error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		return 0, 0, err
	}
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return 0, 0, err
	}
	var set imap.UIDSet
	set.AddRange(1, 0)
	// The items the Source must deliver (a migration needs the flags,
	// date and size of every message with its body), so that the two
	// benchmarks compare the Source's own cost with go-imap's.
	opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	if bodiesOnly {
		opts = &imap.FetchOptions{BodySection: opts.BodySection}
	}
	cmd := c.Fetch(set, opts)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
				k, err := io.Copy(io.Discard, body.Literal)
				if err != nil {
					return n, bytes, err
				}
				n++
				bytes += k
				if each != nil {
					each()
				}
			}
		}
	}
	return n, bytes, cmd.Close()
}

func benchSizes() []int { return []int{1000, 10000} }

// BenchmarkReadSource reads a Dovecot folder through the Source as the
// Engine's first pass does (UIDs, then Fetch in batches of 200 with each
// message's metadata, bodies read to the end).
func BenchmarkReadSource(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			addr, folder := benchFolder(b, n)
			setup := plain(addr, "alice", "secret")
			f := folderNamed(b, setup, folder)
			setup.Close()
			benchRead(b, n, func(each func()) (int, int64, error) {
				src := plain(addr, "alice", "secret")
				defer src.Close()
				return readSource(context.Background(), src, f, each)
			})
		})
	}
}

// benchRead runs read (which reads n messages, calling its argument
// after each) b.N times and reports msgs/s, the bytes read and the peak
// heap in use.
func benchRead(b *testing.B, n int, read func(each func()) (int, int64, error)) {
	runtime.GC()
	var heap heapPeak
	heap.sample()
	b.ResetTimer()
	var total int
	var bytes int64
	for b.Loop() {
		k, by, err := read(heap.each())
		require.NoError(b, err)
		require.Equal(b, n, k, "messages read")
		total += k
		bytes += by
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(heap.peak), "peak-heap-B")
	b.SetBytes(bytes / int64(b.N))
}

// BenchmarkListSource lists the metadata of every message (UID, FLAGS,
// INTERNALDATE, RFC822.SIZE, Message-ID) without bodies, as a later pass
// does on a server without CONDSTORE.
func BenchmarkListSource(b *testing.B) {
	const n = 10000
	addr, folder := benchFolder(b, n)
	ctx := context.Background()
	src := plain(addr, "alice", "secret")
	defer src.Close()
	f := folderNamed(b, src, folder)
	b.ResetTimer()
	total := 0
	for b.Loop() {
		require.NoError(b, src.List(ctx, f, func(migrate.MessageInfo) error { total++; return nil }))
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkReadBare reads the same folder with a bare go-imap
// UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]) on one
// connection, the baseline of BenchmarkReadSource.
func BenchmarkReadBare(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			addr, folder := benchFolder(b, n)
			benchRead(b, n, func(each func()) (int, int64, error) { return readBare(addr, folder, false, each) })
		})
	}
}

// BenchmarkReadBareBodiesOnly is BenchmarkReadBare asking for bodies
// alone (UID FETCH 1:* (BODY.PEEK[])): what the server's cost of the
// metadata is, for reference.
func BenchmarkReadBareBodiesOnly(b *testing.B) {
	const n = 10000
	addr, folder := benchFolder(b, n)
	benchRead(b, n, func(each func()) (int, int64, error) { return readBare(addr, folder, true, each) })
}

// TestReadMemoryBounded reads 10,000 messages through the Source and
// checks that the heap, sampled every 50 messages while a body is in
// hand, stays far below what holding them would take (10,000 x ~5 KB =
// ~50 MB): memory must not grow with the folder.
func TestReadMemoryBounded(t *testing.T) {
	const n = 10000
	addr, folder := benchFolder(t, n)
	ctx := context.Background()
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	f := folderNamed(t, src, folder)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var heap heapPeak
	k, bytes, err := readSource(ctx, src, f, heap.each())
	heap.sample()
	peak := heap.peak
	require.NoError(t, err)
	require.Equal(t, n, k, "messages read")
	grown := int64(peak) - int64(before.HeapInuse)
	t.Logf("read %d messages, %d bytes; heap in use %d before, peak %d (+%d)", k, bytes, before.HeapInuse, peak, grown)
	// Generous: a quarter of the mailbox. A Source that kept bodies or
	// per-message state would exceed it.
	limit := bytes / 4
	assert.LessOrEqual(t, grown, limit, "heap growth reading %d bytes of mail", bytes)
}
