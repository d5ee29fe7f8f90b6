package migratetest_test

import (
	"testing"

	"github.com/mailferry/mailferry/migrate"

	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestMemorySource(t *testing.T) {
	fx := migratetest.Sample()
	migratetest.TestSource(t, migratetest.NewSource(fx), fx)
}

func TestMemorySink(t *testing.T) {
	migratetest.TestSink(t, func(t testing.TB) (migrate.Sink, migratetest.Inspector) {
		s := migratetest.NewSink()
		return s, s
	})
}
