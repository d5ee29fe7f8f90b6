package imapsrc

import (
	"context"
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
		all := data.AllUIDs()
		uids = make([]uint32, len(all))
		for i, u := range all {
			uids[i] = uint32(u)
		}
		slices.Sort(uids)
		return nil
	})
	return uids, unwrapCallback(what, err)
}
