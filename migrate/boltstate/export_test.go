package boltstate

import "time"

// SetSyncCommits makes Commit and SetModSeq of s wait for their
// transaction, as Begin does: for the benchmarks that measure the choice.
func SetSyncCommits(s *State, v bool) { s.syncCommits = v }

// Transactions returns the transactions s wrote, the Begins they carried
// and the time they took.
func Transactions(s *State) (txs, begins int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs, s.waited, s.writing
}
