package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/migrate"
)

// UIDs implements migrate.UIDLister with one UID SEARCH ALL on the folder
// opened read-only: the UIDs alone, in ascending order, without a FETCH of
// every message's metadata (on Dovecot, reading the Message-ID headers of
// a folder costs about as much as reading its bodies). UIDVALIDITY and
// dropped connections are handled as by List.
//
// The answer is checked before it is expanded: a set of UIDs larger than
// the folder's message count (EXISTS) plus maxUIDSlack, or than
// maxFolderUIDs, or open-ended ("1:*"), is refused with an error matching
// ErrBadResponse that names the folder, so that a broken or hostile
// server's "ALL 1:4294967295" fails that folder instead of allocating
// billions of UIDs.
func (s *Source) UIDs(ctx context.Context, f migrate.Folder) ([]uint32, error) {
	var uids []uint32
	want := f.UIDValidity
	what := fmt.Sprintf("search %q", f.Name)
	err := s.do(ctx, what, func() int { return 0 }, func(pc *pconn) error {
		sel, err := examine(pc, f.Name, &want, false)
		if err != nil {
			return err
		}
		if sel.NumMessages == 0 {
			uids = nil
			return nil
		}
		data, err := pc.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("UID SEARCH: %w", err)
		}
		set, _ := data.All.(imap.UIDSet)
		n, ok := countUIDs(set)
		limit := min(uint64(sel.NumMessages)+maxUIDSlack, maxFolderUIDs)
		switch {
		case !ok:
			return fmt.Errorf("UID SEARCH answered an open-ended set of UIDs (%v): %w", set, ErrBadResponse)
		case n > limit:
			return fmt.Errorf("UID SEARCH answered %d UIDs for a folder of %d messages (at most %d taken): %w",
				n, sel.NumMessages, limit, ErrBadResponse)
		}
		uids = make([]uint32, 0, n)
		for _, r := range set {
			lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
			for u := uint64(lo); u <= uint64(hi); u++ {
				uids = append(uids, uint32(u))
			}
		}
		slices.Sort(uids)
		uids = slices.Compact(uids)
		return nil
	})
	return uids, unwrapCallback(what, err)
}

// ErrBadResponse marks an error about a server answer that cannot be
// right, such as more UIDs than the folder holds messages. It concerns
// the folder or message it names, and matches neither migrate.ErrMailbox
// nor migrate.ErrTransient.
var ErrBadResponse = errors.New("implausible answer from the server")

const (
	// maxUIDSlack is how many more UIDs than the message count EXAMINE
	// reported a UID SEARCH may answer: messages delivered in between.
	maxUIDSlack = 10_000
	// maxFolderUIDs bounds the UIDs of one folder whatever the server
	// says (40 MB of them), ten times the million items an Exchange
	// Online folder takes.
	maxFolderUIDs = 10_000_000
)

// countUIDs returns how many UIDs set holds, counting overlapping ranges
// once for each range, and false if it is open-ended (holds "*") or names
// UID 0.
func countUIDs(set imap.UIDSet) (uint64, bool) {
	var n uint64
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return 0, false
		}
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		n += uint64(hi-lo) + 1
	}
	return n, true
}
