package imapsrc

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// ProbeResult is what Probe learned about a mailbox: the "test the
// connection" step of a migration endpoint, and the input of an
// assessment.
type ProbeResult struct {
	// Addr and Security are how the server was reached.
	Addr     string
	Security Security
	// Mechanism is how the Source logged in: "LOGIN", "PLAIN", "XOAUTH2"
	// or "OAUTHBEARER".
	Mechanism string
	// Capabilities are the server's capabilities after login, sorted.
	Capabilities []string
	// Namespaces are the server's namespaces (nil without NAMESPACE).
	Namespaces *imap.NamespaceData
	// Folders are the mailbox's folders as Source.Folders lists them,
	// with Messages and Bytes filled in for every selectable folder that
	// can be read (one that cannot has Err set and counts for nothing).
	Folders []migrate.Folder
	// Messages and Bytes are the totals over Folders.
	Messages int
	Bytes    int64
	// SizeFrom says where Bytes comes from: "STATUS=SIZE" or, for servers
	// without it, "RFC822.SIZE" (the sizes of every message, summed).
	SizeFrom string
	// Elapsed is how long the probe took.
	Elapsed time.Duration
}

// Probe connects and logs in as opts say, and reports on the server and
// the mailbox (see ProbeResult). A failure says which step failed: the
// error is a *StepError for dial, TLS, greeting and authentication
// failures. Probe does not wait for a server that cannot be reached
// (Options.ReconnectFor does not apply): it returns the first failure to
// connect. A connection that drops while it runs is reopened if the
// server can be reached at once.
func Probe(ctx context.Context, opts *Options) (*ProbeResult, error) {
	s := New(opts)
	defer s.Close()
	return s.Probe(ctx)
}

// Probe reports on the server and the mailbox, as the function Probe
// does, with the Source's connection.
func (s *Source) Probe(ctx context.Context) (*ProbeResult, error) {
	start := time.Now()
	res := &ProbeResult{Addr: s.opts.Addr, Security: s.opts.Security}
	// A probe reports what it finds now: no waiting for a server that
	// cannot be reached.
	err := s.run(ctx, "probe", 0, func() int { return 0 }, func(pc *pconn) error {
		res.Mechanism = pc.info.mechanism
		res.Capabilities = res.Capabilities[:0]
		for c := range pc.info.caps {
			res.Capabilities = append(res.Capabilities, string(c))
		}
		slices.Sort(res.Capabilities)
		res.Namespaces = pc.info.ns
		folders, err := s.folders(pc)
		if err != nil {
			return err
		}
		res.SizeFrom = "STATUS=SIZE"
		if !hasStatusSize(pc.info.caps) {
			res.SizeFrom = "RFC822.SIZE"
		}
		res.Messages, res.Bytes = 0, 0
		for i := range folders {
			f := &folders[i]
			if f.NoSelect || f.Err != nil {
				continue // a folder that cannot be read keeps its Err
			}
			if f.Bytes < 0 {
				if f.Bytes, err = sumSizes(pc, f); err != nil {
					return err
				}
			}
			res.Messages += max(f.Messages, 0)
			res.Bytes += f.Bytes
		}
		res.Folders = folders
		return nil
	})
	if err != nil {
		return nil, wrapErr("probe", err)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// sumSizes adds up the RFC822.SIZE of every message of f, streamed.
func sumSizes(pc *pconn, f *migrate.Folder) (int64, error) {
	want := f.UIDValidity
	sel, err := examine(pc, f.Name, &want, false)
	if err != nil {
		return 0, err
	}
	if sel.NumMessages == 0 {
		return 0, nil
	}
	var set imap.UIDSet
	set.AddRange(1, 0)
	cmd := pc.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true})
	var sum int64
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		for item := msg.Next(); item != nil; item = msg.Next() {
			if sz, ok := item.(imapclient.FetchItemDataRFC822Size); ok {
				sum += sz.Size
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return 0, fmt.Errorf("UID FETCH RFC822.SIZE of %q: %w", f.Name, err)
	}
	return sum, nil
}
