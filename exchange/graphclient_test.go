package exchange

import (
	"sync"
	"testing"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// TestClientsCreatedWhileOthersWork creates Clients, each against its own
// emulator, while others migrate: each reaches its own server and copies
// its mailbox whole. Under the race detector (CI runs this package with
// -race) it also shows that creating a Client touches nothing that a
// working Client reads: msgraph-sdk-go's constructor writes process-wide
// variables that every decoded model reads.
func TestClientsCreatedWhileOthersWork(t *testing.T) {
	const clients = 4
	envs := make([]*env, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEnv(t, nil)
			envs[i] = e
			rep, err := migrate.Mailbox(t.Context(), testUser, migratetest.NewSource(migratetest.Sample()), e.mb)
			if err != nil {
				t.Errorf("client %d: %v (%+v)", i, err, rep)
			}
		}()
	}
	wg.Wait()
	for i, e := range envs {
		if e == nil {
			continue
		}
		for _, d := range e.srv.CheckFixture(testUser, migratetest.Sample()) {
			t.Errorf("client %d: %s", i, d)
		}
	}
}
