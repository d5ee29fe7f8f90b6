package boltstate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func open(t testing.TB, path string) *boltstate.State {
	t.Helper()
	st, err := boltstate.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func id(folder string, uidValidity, uid uint32) migrate.SourceID {
	return migrate.SourceID{Folder: folder, UIDValidity: uidValidity, UID: uid}
}

// sameFolder reports how got differs from want, or "".
func sameFolder(got, want migrate.FolderState) string {
	if got.UIDValidity != want.UIDValidity || got.ModSeq != want.ModSeq {
		return fmt.Sprintf("UIDVALIDITY %d MODSEQ %d, want %d %d", got.UIDValidity, got.ModSeq, want.UIDValidity, want.ModSeq)
	}
	if got.Records == nil {
		return "nil Records"
	}
	if len(got.Records) != len(want.Records) {
		return fmt.Sprintf("%d records, want %d", len(got.Records), len(want.Records))
	}
	for uid, w := range want.Records {
		g, ok := got.Records[uid]
		if !ok || g.UID != w.UID || g.ItemID != w.ItemID || !slices.Equal(g.Flags, w.Flags) {
			return fmt.Sprintf("UID %d: %+v, want %+v", uid, g, w)
		}
	}
	return ""
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "state.db")
	st := open(t, path)
	defer st.Close()
	if st.Path() != path {
		t.Errorf("Path() = %q", st.Path())
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may take bits away, never add them.
		if info.Mode()&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", p, info.Mode(), want)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	st := open(t, path)
	must(t, st.Begin(ctx, "a@x", id("INBOX", 7, 1)))
	must(t, st.Commit(ctx, "a@x", id("INBOX", 7, 1), "item-1", []migrate.Flag{migrate.FlagSeen, "$Label1"}))
	must(t, st.Begin(ctx, "a@x", id("INBOX", 7, 2)))
	must(t, st.Begin(ctx, "a@x", id("INBOX", 7, 1))) // leaves the commit as it is
	must(t, st.SetModSeq(ctx, "a@x", "INBOX", 7, 42))
	must(t, st.Commit(ctx, "", id("", 0, 0xFFFFFFFF), "item-edge", nil)) // empty names, UID 2^32-1
	must(t, st.Close())

	st = open(t, path)
	defer st.Close()
	want := migrate.FolderState{UIDValidity: 7, ModSeq: 42, Records: map[uint32]migrate.Record{
		1: {UID: 1, ItemID: "item-1", Flags: []migrate.Flag{migrate.FlagSeen, "$Label1"}},
		2: {UID: 2},
	}}
	fs, err := st.Load(ctx, "a@x", "INBOX")
	must(t, err)
	if d := sameFolder(fs, want); d != "" {
		t.Errorf("INBOX: %s", d)
	}
	if r := fs.Records[2]; r.Committed() || r.Flags != nil {
		t.Errorf("UID 2 should be begun only: %+v", r)
	}
	fs, err = st.Load(ctx, "", "")
	must(t, err)
	if r := fs.Records[0xFFFFFFFF]; len(fs.Records) != 1 || r.ItemID != "item-edge" {
		t.Errorf("empty names: %+v", fs)
	}
	for _, c := range [][2]string{{"a@x", "Sent"}, {"b@x", "INBOX"}} {
		fs, err := st.Load(ctx, c[0], c[1])
		must(t, err)
		if fs.Records == nil || len(fs.Records) != 0 || fs.UIDValidity != 0 {
			t.Errorf("%s %s: %+v, want nothing", c[0], c[1], fs)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{dir, filepath.Join(dir, "state.db", "x")} {
		if path != dir {
			must(t, os.WriteFile(filepath.Dir(path), nil, 0o600)) // a file where a directory should be
		}
		_, err := boltstate.Open(path, nil)
		if err == nil || errors.Is(err, boltstate.ErrCorrupt) || errors.Is(err, boltstate.ErrLocked) {
			t.Errorf("Open(%q): %v, want the system's error", path, err)
		}
	}
}

func TestNameTooLong(t *testing.T) {
	ctx := t.Context()
	st := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	if err := st.Begin(ctx, "a", id(strings.Repeat("x", 40000), 1, 1)); err == nil {
		t.Error("Begin with a 40,000-byte folder name succeeded")
	}
	// Only that call fails.
	must(t, st.Begin(ctx, "a", id("INBOX", 1, 1)))
}

func TestCommitWithoutItemID(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	if err := st.Commit(t.Context(), "a", id("INBOX", 1, 1), "", nil); err == nil {
		t.Error("Commit without an item id succeeded")
	}
}

func TestNewUIDValidityStartsAfresh(t *testing.T) {
	ctx := t.Context()
	st := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	for uid := uint32(1); uid <= 100; uid++ {
		must(t, st.Commit(ctx, "a", id("INBOX", 7, uid), "item", nil))
	}
	must(t, st.SetModSeq(ctx, "a", "INBOX", 7, 9))
	must(t, st.Commit(ctx, "a", id("Sent", 7, 1), "sent", nil))
	must(t, st.Begin(ctx, "a", id("INBOX", 8, 3)))
	fs, err := st.Load(ctx, "a", "INBOX")
	must(t, err)
	want := migrate.FolderState{UIDValidity: 8, Records: map[uint32]migrate.Record{3: {UID: 3}}}
	if d := sameFolder(fs, want); d != "" {
		t.Errorf("INBOX: %s", d)
	}
	if fs, _ := st.Load(ctx, "a", "Sent"); len(fs.Records) != 1 {
		t.Errorf("Sent lost its records: %+v", fs)
	}
}

// TestMatchesMemoryState makes the same random changes, from several
// goroutines, to a State and to a migrate.MemoryState, and checks that
// both hold the same, before and after reopening.
func TestMatchesMemoryState(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := boltstate.Open(path, &boltstate.Options{MaxChangesPerTransaction: 7})
	must(t, err)
	mem := migrate.NewMemoryState()
	mailboxes := []string{"a@x", "b@x", "c@x", "d@x"}
	folders := []string{"INBOX", "Sent", "Archive/2024"}
	flagSets := [][]migrate.Flag{nil, {migrate.FlagSeen}, {migrate.FlagSeen, migrate.FlagFlagged}, {"$Label1", migrate.FlagAnswered}}
	var wg sync.WaitGroup
	for i, box := range mailboxes { // each mailbox from its own goroutine, as the Engine does
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for n := range 3000 {
				folder := folders[r.IntN(len(folders))]
				uidv := uint32(1)
				if r.IntN(500) == 0 {
					uidv = 2 // now and then, a new UIDVALIDITY
				}
				sid := id(folder, uidv, uint32(r.IntN(200)+1))
				k := r.IntN(10)
				for _, s := range []migrate.State{st, mem} {
					var err error
					switch {
					case k < 4:
						err = s.Begin(ctx, box, sid)
					case k < 9:
						err = s.Commit(ctx, box, sid, fmt.Sprintf("item-%d-%d", i, n), flagSets[n%len(flagSets)])
					default:
						err = s.SetModSeq(ctx, box, folder, uidv, uint64(n))
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	check := func(when string) {
		for _, box := range mailboxes {
			for _, folder := range folders {
				got, err := st.Load(ctx, box, folder)
				must(t, err)
				want, _ := mem.Load(ctx, box, folder)
				if d := sameFolder(got, want); d != "" {
					t.Errorf("%s, %s %s: %s", when, box, folder, d)
				}
			}
		}
	}
	check("open")
	must(t, st.Close())
	st = open(t, path)
	defer st.Close()
	check("reopened")
}

// TestLoadSeesQueuedChanges is what a second Engine.Run in the same
// process does: Commits that returned at once are seen by the next Load.
func TestLoadSeesQueuedChanges(t *testing.T) {
	ctx := t.Context()
	st := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	for uid := uint32(1); uid <= 5000; uid++ {
		must(t, st.Commit(ctx, "a", id("INBOX", 1, uid), "item", nil))
	}
	must(t, st.SetModSeq(ctx, "a", "INBOX", 1, 77))
	fs, err := st.Load(ctx, "a", "INBOX")
	must(t, err)
	if len(fs.Records) != 5000 || fs.ModSeq != 77 {
		t.Errorf("Load saw %d records and MODSEQ %d, want 5000 and 77", len(fs.Records), fs.ModSeq)
	}
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	st := open(t, filepath.Join(t.TempDir(), "state.db"))
	must(t, st.Commit(ctx, "a", id("INBOX", 1, 1), "item", nil))
	must(t, st.Close())
	must(t, st.Close()) // twice does nothing
	if err := st.Begin(ctx, "a", id("INBOX", 1, 2)); !errors.Is(err, boltstate.ErrClosed) {
		t.Errorf("Begin after Close: %v", err)
	}
	if err := st.Commit(ctx, "a", id("INBOX", 1, 2), "x", nil); !errors.Is(err, boltstate.ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if _, err := st.Load(ctx, "a", "INBOX"); !errors.Is(err, boltstate.ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st := open(t, path)
	start := time.Now()
	_, err := boltstate.Open(path, nil)
	if !errors.Is(err, boltstate.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("second Open took %v to fail", took)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "in use by another process") {
		t.Errorf("error %q should name the file and say it is in use", msg)
	}
	must(t, st.Close())
	st = open(t, path) // free again
	must(t, st.Close())
}

// helperEnv starts the test binary as a helper process (TestHelperProcess).
const helperEnv = "BOLTSTATE_HELPER"

func helper(t *testing.T, role, path string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "BOLTSTATE_PATH="+path)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// TestHelperProcess is the other process of the tests below: "hold" opens
// the state and waits; "write" begins and commits UIDs 1, 2, ... in a
// loop, saying "begun N" once Begin returns and "synced N" once every
// change up to N is on disk.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("only a helper for other tests")
	}
	ctx := context.Background()
	st, err := boltstate.Open(os.Getenv("BOLTSTATE_PATH"), nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("open")
	switch role {
	case "hold":
		select {}
	case "write":
		item := strings.Repeat("x", 150)
		for uid := uint32(1); ; uid++ {
			if err := st.Begin(ctx, "a", id("INBOX", 1, uid)); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("begun", uid)
			if err := st.Commit(ctx, "a", id("INBOX", 1, uid), item+strconv.Itoa(int(uid)), []migrate.Flag{migrate.FlagSeen}); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			if uid%10 == 0 {
				if err := st.Sync(ctx); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				fmt.Println("synced", uid)
			}
		}
	}
}

func TestLockedByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd, out := helper(t, "hold", path)
	if !out.Scan() || out.Text() != "open" {
		t.Fatalf("helper: %q", out.Text())
	}
	if _, err := boltstate.Open(path, nil); !errors.Is(err, boltstate.ErrLocked) {
		t.Fatalf("Open while another process holds the state: %v, want ErrLocked", err)
	}
	// The lock goes with the process, however it ends.
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	st := open(t, path)
	must(t, st.Close())
}

// TestKilledMidWrite kills a process in the middle of its writes, again
// and again on the same file, and checks that the file opens each time
// with every record whose Begin returned, committed where a Sync after
// its Commit returned. (A killed process leaves what it wrote to the
// kernel; a power loss can tear a write: TestTornMetaPage.)
func TestKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	for round := range 5 {
		// Each round writes the UIDs from 1 again, so that it kills the
		// process in the middle of overwriting pages, not only adding.
		cmd, out := helper(t, "write", path)
		if !out.Scan() || out.Text() != "open" {
			t.Fatalf("round %d: helper: %q", round, out.Text())
		}
		var begun, synced uint32
		lines := 200 + 137*round
		for n := 0; n < lines && out.Scan(); n++ {
			f := strings.Fields(out.Text())
			if len(f) != 2 || f[0] == "error" {
				t.Fatalf("round %d: helper: %q", round, out.Text())
			}
			v, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "begun":
				begun = uint32(v)
			case "synced":
				synced = uint32(v)
			}
		}
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		cmd.Wait()

		st := open(t, path)
		fs, err := st.Load(ctx, "a", "INBOX")
		must(t, err)
		for uid := uint32(1); uid <= begun; uid++ {
			r, ok := fs.Records[uid]
			switch {
			case !ok:
				t.Errorf("round %d: UID %d was begun but is not recorded", round, uid)
			case uid <= synced && (!r.Committed() || r.ItemID != strings.Repeat("x", 150)+strconv.Itoa(int(uid))):
				t.Errorf("round %d: UID %d was committed and synced but is %+v", round, uid, r)
			}
		}
		t.Logf("round %d: killed after begun %d, synced %d; %d records", round, begun, synced, len(fs.Records))
		must(t, st.Close())
	}
}

// TestFlagChangesDoNotGrowFile commits new flags to the same 1,000
// records a million times (100,000 with -short).
func TestFlagChangesDoNotGrowFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	st := open(t, path)
	defer st.Close()
	item := strings.Repeat("A", 152) // the length of an Exchange item id
	flags := [][]migrate.Flag{{migrate.FlagSeen}, {migrate.FlagSeen, migrate.FlagFlagged, "$Label1"}}
	const records = 1000
	for uid := uint32(1); uid <= records; uid++ {
		must(t, st.Commit(ctx, "a", id("INBOX", 1, uid), item, flags[0]))
	}
	must(t, st.Sync(ctx))
	size := func() int64 {
		info, err := os.Stat(path)
		must(t, err)
		return info.Size()
	}
	before := size()
	changes := 1_000_000
	if testing.Short() {
		changes = 100_000
	}
	for n := range changes {
		uid := uint32(n%records + 1)
		must(t, st.Commit(ctx, "a", id("INBOX", 1, uid), item, flags[(n/records+1)%2]))
	}
	must(t, st.Sync(ctx))
	after := size()
	t.Logf("%d records: %d bytes; after %d flag changes: %d bytes", records, before, changes, after)
	// The records take about 200 KB; bbolt grows the file in steps and
	// keeps freed pages for reuse, so allow a few steps, never a million
	// changes' worth (about 180 MB as a journal).
	if after > before+4<<20 {
		t.Errorf("the file grew from %d to %d bytes", before, after)
	}
	fs, err := st.Load(ctx, "a", "INBOX")
	must(t, err)
	if len(fs.Records) != records || !slices.Equal(fs.Records[1].Flags, flags[(changes/records)%2]) {
		t.Errorf("after the changes: %d records, UID 1 %+v", len(fs.Records), fs.Records[1])
	}
}

// pageSize is bbolt's page size on this machine: the OS's.
var pageSize = os.Getpagesize()

// TestTornMetaPage damages the meta page of the last transaction, as a
// write torn by a power loss could: the file opens at the transaction
// before it.
func TestTornMetaPage(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	st := open(t, path)
	must(t, st.Begin(ctx, "a", id("INBOX", 1, 1)))
	must(t, st.Commit(ctx, "a", id("INBOX", 1, 1), "item-1", nil))
	must(t, st.Sync(ctx))
	must(t, st.Begin(ctx, "a", id("INBOX", 1, 2))) // the last transaction
	must(t, st.Close())

	// bbolt alternates between the meta pages 0 and 1 (by transaction id)
	// and takes the valid one with the higher id: find it by trying.
	data, err := os.ReadFile(path)
	must(t, err)
	for page := range 2 {
		torn := slices.Clone(data)
		off := page*pageSize + 16 + 40 // into the meta, past the page header and magic/version/size fields
		for i := range 16 {
			torn[off+i] ^= 0xFF
		}
		must(t, os.WriteFile(path, torn, 0o600))
		st, err := boltstate.Open(path, nil)
		if err != nil {
			t.Fatalf("meta page %d torn: %v", page, err)
		}
		fs, err := st.Load(ctx, "a", "INBOX")
		must(t, err)
		must(t, st.Close())
		if r := fs.Records[1]; r.ItemID != "item-1" {
			t.Errorf("meta page %d torn: UID 1 is %+v", page, r)
		}
		t.Logf("meta page %d torn: %d records", page, len(fs.Records))
	}
}

func TestDamagedFile(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.db")
	st := open(t, full)
	item := strings.Repeat("A", 152)
	for uid := uint32(1); uid <= 20000; uid++ {
		must(t, st.Commit(t.Context(), "a", id("INBOX", 1, uid), item, nil))
	}
	must(t, st.Close())
	data, err := os.ReadFile(full)
	must(t, err)

	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	for name, content := range map[string][]byte{
		"garbage":   garbage,
		"short":     data[:pageSize+100],
		"truncated": data[:len(data)/3],
	} {
		path := filepath.Join(dir, name+".db")
		must(t, os.WriteFile(path, content, 0o600))
		st, err := boltstate.Open(path, nil)
		if err == nil {
			// bbolt may open it; then reading it must fail, not crash.
			_, err = st.Load(t.Context(), "a", "INBOX")
			st.Close()
		}
		if !errors.Is(err, boltstate.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "deleting it is safe when the sink can rebuild") {
			t.Errorf("%s: error %q should name the file and say when deleting it is safe", name, msg)
		}
	}

	journal := filepath.Join(dir, "old.journal")
	must(t, os.WriteFile(journal, []byte(`{"op":"begin","mailbox":"a","folder":"INBOX","uidvalidity":1,"uid":1}`+"\n"), 0o600))
	if _, err := boltstate.Open(journal, nil); err == nil || !strings.Contains(err.Error(), "JSON journal") {
		t.Errorf("Open of an old journal: %v", err)
	}
}

// TestEngine runs the sample mailbox through the Engine with a State,
// again with the State reopened (nothing to copy), and through a crash
// between Put and Commit (migratetest.CrashAndResume opens a State of
// this package).
func TestEngine(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	fx := migratetest.Sample()
	src, dst := migratetest.NewSource(fx), migratetest.NewSink()
	job := migrate.Job{Mailbox: "a@x", Source: src, Sink: dst}
	st := open(t, path)
	rep := migrate.NewEngine(&migrate.Options{State: st}).Run(ctx, job)
	if tot := rep.Totals(); rep.Lost() || tot.Copied != fx.Count() {
		t.Fatalf("first run: %+v", tot)
	}
	must(t, st.Close())
	st = open(t, path)
	defer st.Close()
	rep = migrate.NewEngine(&migrate.Options{State: st}).Run(ctx, job)
	if tot := rep.Totals(); rep.Lost() || tot.Copied != 0 || tot.AlreadyCopied != fx.Count() {
		t.Errorf("second run: %+v", tot)
	}
	if dst.Puts != fx.Count() {
		t.Errorf("the sink got %d Puts, want %d", dst.Puts, fx.Count())
	}

	dst = migratetest.NewSink()
	job = migrate.Job{Mailbox: "a@x", Source: migratetest.NewSource(fx), Sink: dst}
	rep = migratetest.CrashAndResume(t, job, func(id migrate.SourceID) bool { return id.UID == 2 }, nil)
	if tot := rep.Totals(); rep.Lost() || tot.Repaired < 1 {
		t.Errorf("after the crash: %+v", tot)
	}
	if got := len(dst.Items()); got != fx.Count() {
		t.Errorf("after the crash the sink holds %d items, want %d", got, fx.Count())
	}
}
