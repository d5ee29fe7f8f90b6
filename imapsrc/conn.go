package imapsrc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/backoff"
	"github.com/mailferry/mailferry/migrate"
)

// serverInfo is what a Source learns about the server after logging in.
type serverInfo struct {
	caps      imap.CapSet
	mechanism string              // how the Source logged in
	ns        *imap.NamespaceData // nil without NAMESPACE
	prefix    string              // personal namespace prefix, "" or "INBOX." ...
	delim     rune                // personal namespace delimiter, 0 if unknown
}

// connect dials, logs in and learns about the server.
func (s *Source) connect(ctx context.Context) (*pconn, error) {
	start := time.Now()
	c, raw, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	pc := &pconn{s: s, c: c, raw: raw}
	info, err := s.login(ctx, c, raw)
	if err != nil {
		raw.Close()
		c.Close()
		return nil, err
	}
	pc.info = info
	s.opts.Logger.Debug("imapsrc: connected", "source", s.String(), "security", s.opts.Security.String(),
		"mechanism", info.mechanism, "elapsed", time.Since(start))
	return pc, nil
}

// abort ends pc at once, even in the middle of a FETCH whose response is
// still arriving: the socket is closed first, then cmd (if any) is drained,
// then the client closed. The order matters: go-imap's reader goroutine
// waits until a body literal has been consumed, and Client.Close waits for
// that goroutine, so closing the client first with a literal pending would
// never return. The connection is not reused.
func (s *Source) abort(pc *pconn, cmds ...*imapclient.FetchCommand) {
	pc.dead.Store(true)
	pc.raw.Close()
	for _, cmd := range cmds {
		if cmd != nil {
			_ = cmd.Close()
		}
	}
	pc.c.Close()
}

// abortAfterLiteral is abort after a body literal of pc failed to read
// (its connection broken or closed): the socket is closed, go-imap's
// reader goroutine awaited (see awaitReader), then the commands drained.
func (s *Source) abortAfterLiteral(pc *pconn, cmds ...*imapclient.FetchCommand) {
	pc.raw.Close()
	pc.awaitReader()
	s.abort(pc, cmds...)
}

// awaitReader waits, once a body literal of pc has failed to read and its
// socket is closed, for go-imap's reader goroutine to end. go-imap lets
// that goroutine go on at a literal's first error, while draining a
// command (FetchCommand.Close) reads what is left of that literal again
// from the buffer they share: without the wait, the two race. The
// goroutine fails at once on the closed socket; the wait is bounded all
// the same (readerGrace), so that an abort never hangs on it.
func (pc *pconn) awaitReader() {
	t := time.NewTimer(readerGrace)
	defer t.Stop()
	select {
	case <-pc.c.Closed():
	case <-t.C:
	}
}

// readerGrace bounds awaitReader.
const readerGrace = 5 * time.Second

// dial connects and waits for the greeting.
func (s *Source) dial(ctx context.Context) (*imapclient.Client, net.Conn, error) {
	addr := s.opts.Addr
	if addr == "" {
		return nil, nil, migrate.MailboxError(errors.New("imapsrc: no server address (Options.Addr)"))
	}
	dctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	dialer := s.opts.DialContext
	if dialer == nil {
		dialer = (&net.Dialer{}).DialContext
	}
	raw, err := dialer(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, stepErr(StepDial, migrate.TransientError(fmt.Errorf("imapsrc: dial %s: %w", addr, err)))
	}
	nc := &deadlineConn{Conn: raw, timeout: s.opts.IOTimeout}
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()

	var c *imapclient.Client
	switch s.opts.Security {
	case TLS:
		tc := tls.Client(nc, s.tlsConfig())
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			err = fmt.Errorf("imapsrc: TLS handshake with %s: %w", addr, err)
			if isNotTLS(err) {
				// A plaintext server answers the ClientHello with its
				// greeting. Say so, and never fall back silently.
				err = fmt.Errorf("%w (the server does not speak TLS on this port; use Security StartTLS, or Plaintext on a trusted link)", err)
				return nil, nil, stepErr(StepTLS, migrate.MailboxError(err))
			}
			if connDead(nil, err) {
				// Cut off or timed out (a server starting up, a load
				// balancer without a backend): that may pass. A failed
				// verification or a TLS alert does not.
				return nil, nil, stepErr(StepTLS, migrate.TransientError(err))
			}
			return nil, nil, stepErr(StepTLS, migrate.MailboxError(err))
		}
		c = imapclient.New(tc, nil)
	case StartTLS:
		c, err = imapclient.NewStartTLS(nc, &imapclient.Options{TLSConfig: s.tlsConfig()})
		if err != nil {
			raw.Close()
			if ctx.Err() == nil && dctx.Err() == nil && !connDead(nil, err) {
				return nil, nil, stepErr(StepTLS, migrate.MailboxError(fmt.Errorf("imapsrc: STARTTLS with %s: %w", addr, err)))
			}
			return nil, nil, stepErr(StepTLS, migrate.TransientError(fmt.Errorf("imapsrc: STARTTLS with %s: %w", addr, err)))
		}
	case Plaintext:
		c = imapclient.New(nc, nil)
	default:
		raw.Close()
		return nil, nil, migrate.MailboxError(fmt.Errorf("imapsrc: unknown Security %d", s.opts.Security))
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, stepErr(StepGreeting, migrate.TransientError(fmt.Errorf("imapsrc: greeting from %s: %w", addr, err)))
	}
	return c, raw, nil
}

// tlsConfig returns the TLS configuration, with ServerName from Addr.
func (s *Source) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if s.opts.TLSConfig != nil {
		cfg = s.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(s.opts.Addr); err == nil {
			cfg.ServerName = host
		}
	}
	if cfg.NextProtos == nil {
		cfg.NextProtos = []string{"imap"}
	}
	return cfg
}

// login authenticates and learns the capabilities and the namespace.
func (s *Source) login(ctx context.Context, c *imapclient.Client, raw net.Conn) (*serverInfo, error) {
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	mech, err := s.authenticate(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var se *StepError
		if errors.As(err, &se) {
			return nil, err // the token source failed
		}
		// Neither password nor token is ever part of the message: go-imap
		// reports the server's response text only.
		err = fmt.Errorf("imapsrc: log in as %q on %s with %s: %w", s.opts.Username, s.opts.Addr, mech, err)
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code != imap.ResponseCodeUnavailable {
			return nil, stepErr(StepAuth, migrate.MailboxError(err))
		}
		if connDead(c, err) || ie != nil {
			return nil, stepErr(StepAuth, migrate.TransientError(err))
		}
		return nil, stepErr(StepAuth, migrate.MailboxError(err))
	}
	info := &serverInfo{caps: c.Caps(), mechanism: mech}
	if info.caps.Has(imap.CapNamespace) || info.caps.Has(imap.CapIMAP4rev2) {
		ns, err := c.Namespace().Wait()
		if err != nil {
			if connDead(c, err) {
				return nil, migrate.TransientError(fmt.Errorf("imapsrc: NAMESPACE: %w", err))
			}
			s.opts.Logger.Warn("imapsrc: NAMESPACE failed; assuming no prefix", "source", s.String(), "err", err)
		} else if ns != nil {
			info.ns = ns
			if len(ns.Personal) > 0 {
				info.prefix = ns.Personal[0].Prefix
				info.delim = ns.Personal[0].Delim
			}
		}
	}
	return info, nil
}

// connDead reports whether err means the connection is gone (rather than
// the server refusing a command, or the Source refusing to go on). c may
// be nil.
func connDead(c *imapclient.Client, err error) bool {
	if c != nil {
		select {
		case <-c.Closed():
			return true
		default:
		}
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return false
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || errors.Is(err, errTruncated) ||
		errors.Is(err, errIncomplete) {
		return true
	}
	if c == nil || errors.Is(err, migrate.ErrNoModSeq) || errors.Is(err, migrate.ErrUIDValidityChanged) ||
		errors.Is(err, migrate.ErrMailbox) {
		return false
	}
	// go-imap fails the pending commands of a broken connection (with the
	// network error as text only) just before it closes Client.Closed.
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.Closed():
		return true
	case <-t.C:
		return false
	}
}

// closeGrace is how long connDead waits for go-imap to mark a client
// closed after an error that may be a broken connection's.
const closeGrace = 100 * time.Millisecond

// isTransient reports whether a connect error is worth retrying.
func isTransient(err error) bool {
	return errors.Is(err, migrate.ErrTransient) && !errors.Is(err, migrate.ErrMailbox)
}

// isNotTLS recognises a handshake with a server that is not speaking TLS.
func isNotTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "first record does not look like a TLS handshake")
}

// reconnectPolicy spaces the reconnect attempts after the first: 100ms,
// 200ms, 400ms... up to 5s, each jittered into its upper half. A server
// restart drops every connection of a batch at once (MaxMailboxes
// Sources, each with its connections) and they may wait for it for
// minutes (ReconnectFor): the jitter keeps them from retrying in
// lockstep, and from all logging in again in the same instant when the
// server, just restarted, comes back.
var reconnectPolicy = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// reconnectWait is the pause before reconnect attempt n (1-based): none
// for the first (a lone dropped connection is reopened at once), then
// reconnectPolicy's.
func reconnectWait(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return reconnectPolicy.Wait(n - 2)
}

// deadlineConn gives every Read and Write its own deadline, IOTimeout from
// now, so that a silent server counts as a dropped connection. go-imap's
// own deadline calls are ignored in its favour.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }
