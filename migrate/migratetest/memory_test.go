package migratetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/migrate"

	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestMemorySource(t *testing.T) {
	fx := migratetest.Sample()
	// An empty folder, and one whose parent is not in the fixture.
	fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: []string{"Empty"}},
		migratetest.FixtureFolder{Path: []string{"Lists", "Empty child"}})
	src := migratetest.NewSource(fx)
	migratetest.TestSource(t, src, fx, migratetest.WithHooks(src.Hooks()))
}

// TestMemorySourceNoHooks runs TestSource without hooks, and without
// mod-sequences: the subtests that need them skip.
func TestMemorySourceNoHooks(t *testing.T) {
	fx := migratetest.Sample()
	src := migratetest.NewSource(fx)
	src.NoModSeq = true
	migratetest.TestSource(t, src, fx)
}

func TestMemorySink(t *testing.T) {
	migratetest.TestSink(t, func(t testing.TB) (migrate.Sink, migratetest.Inspector) {
		s := migratetest.NewSink()
		return s, s
	})
}

// batchSink is a Sink that also implements migrate.BatchFlagSetter.
// (Sink itself does not, so that tests that wrap it to intercept
// SetFlags see every change.)
type batchSink struct{ *migratetest.Sink }

func (b batchSink) SetFlagsBatch(ctx context.Context, changes []migrate.FlagChange) []error {
	errs := make([]error, len(changes))
	for i, c := range changes {
		errs[i] = b.SetFlags(ctx, c.ItemID, c.Flags)
	}
	return errs
}

func TestMemoryBatchSink(t *testing.T) {
	migratetest.TestSink(t, func(t testing.TB) (migrate.Sink, migratetest.Inspector) {
		s := migratetest.NewSink()
		return batchSink{s}, s
	})
}

// TestSourceBadFixture checks that TestSource fails, saying why, when the
// fixture gives it nothing to check. TestSource needs a *testing.T, so
// each case runs in a child test process.
func TestSourceBadFixture(t *testing.T) {
	if name := os.Getenv("MIGRATETEST_BAD_FIXTURE"); name != "" {
		fx := map[string]*migratetest.Fixture{
			"nil":         nil,
			"no-folders":  {},
			"no-messages": {Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}}, {Path: []string{"Empty"}}}},
		}[name]
		migratetest.TestSource(t, migratetest.NewSource(&migratetest.Fixture{}), fx)
		return
	}
	for name, want := range map[string]string{
		"nil":         "the fixture has no folders",
		"no-folders":  "the fixture has no folders",
		"no-messages": "the fixture has no messages",
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSourceBadFixture$", "-test.v")
			cmd.Env = append(os.Environ(), "MIGRATETEST_BAD_FIXTURE="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("TestSource with fixture %s passed:\n%s", name, out)
			}
			if !strings.Contains(string(out), want) || strings.Contains(string(out), "panic") {
				t.Errorf("TestSource with fixture %s: output lacks %q (or panicked):\n%s", name, want, out)
			}
		})
	}
}
