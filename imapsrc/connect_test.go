package imapsrc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func stepOf(err error) imapsrc.Step {
	var se *imapsrc.StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

func TestTLSAndStartTLS(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{TLS: true, Users: map[string]string{"alice": "secret"}})
	fx := migratetest.Sample()
	seed(t, srv.Addr(), "alice", "secret", fx)
	for _, tc := range []struct {
		name     string
		addr     string
		sec      imapsrc.Security
		cfg      *tls.Config
		wantStep imapsrc.Step // "" for success
	}{
		{"tls", srv.TLSAddr(), imapsrc.TLS, &tls.Config{RootCAs: srv.RootCAs()}, ""},
		{"starttls", srv.Addr(), imapsrc.StartTLS, &tls.Config{RootCAs: srv.RootCAs()}, ""},
		{"tls-wrong-servername", srv.TLSAddr(), imapsrc.TLS, &tls.Config{RootCAs: srv.RootCAs(), ServerName: "imap.example.com"}, imapsrc.StepTLS},
		{"starttls-wrong-servername", srv.Addr(), imapsrc.StartTLS, &tls.Config{RootCAs: srv.RootCAs(), ServerName: "imap.example.com"}, imapsrc.StepTLS},
		{"tls-untrusted", srv.TLSAddr(), imapsrc.TLS, nil, imapsrc.StepTLS},
		{"starttls-untrusted", srv.Addr(), imapsrc.StartTLS, nil, imapsrc.StepTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: tc.addr, Security: tc.sec, TLSConfig: tc.cfg,
				Username: "alice", Password: "secret", DialTimeout: 5 * time.Second})
			if tc.wantStep == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Messages != fx.Count() {
					t.Errorf("probe over %s: %d messages, want %d", tc.sec, res.Messages, fx.Count())
				}
				return
			}
			if err == nil {
				t.Fatal("connected")
			}
			if stepOf(err) != tc.wantStep || !errors.Is(err, migrate.ErrMailbox) || strings.Contains(err.Error(), "secret") {
				t.Errorf("err = %v (step %q), want a mailbox error at step %q", err, stepOf(err), tc.wantStep)
			}
			t.Logf("error: %v", err)
		})
	}
}

// tokens is a TokenSource that hands out its tokens in turn and counts
// the calls.
type tokens struct {
	list  []string
	calls atomic.Int32
}

func (ts *tokens) Token(ctx context.Context) (string, error) {
	i := int(ts.calls.Add(1)) - 1
	return ts.list[min(i, len(ts.list)-1)], nil
}

func TestOAuthTokens(t *testing.T) {
	srv := startMemOpts(t, &imapsrctest.MemOptions{OAuth: true})
	srv.AcceptToken("alice", "fresh-token")
	probe := func(mech string, ts imapsrc.TokenSource) (*imapsrc.ProbeResult, error) {
		return imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext,
			Username: "alice", TokenSource: ts, AuthMechanism: mech})
	}
	for _, mech := range []string{"", imapsrc.MechXOAuth2, imapsrc.MechOAuthBearer} {
		t.Run("mech="+mech, func(t *testing.T) {
			before := len(srv.Auths())
			// The first token has expired: the source is asked again.
			ts := &tokens{list: []string{"expired-token", "fresh-token"}}
			res, err := probe(mech, ts)
			if err != nil {
				t.Fatal(err)
			}
			want := mech
			if want == "" {
				want = imapsrc.MechOAuthBearer // the server offers both
			}
			if res.Mechanism != want || ts.calls.Load() != 2 {
				t.Errorf("mechanism %q after %d token calls, want %q after 2", res.Mechanism, ts.calls.Load(), want)
			}
			if got := srv.Auths()[before:]; !slices.Equal(got, []string{want + " alice fail", want + " alice ok"}) {
				t.Errorf("server saw %q", got)
			}
		})
	}
	t.Run("rejected", func(t *testing.T) {
		ts := &tokens{list: []string{"bad-token-1", "bad-token-2"}}
		_, err := probe(imapsrc.MechXOAuth2, ts)
		if !errors.Is(err, migrate.ErrMailbox) || stepOf(err) != imapsrc.StepAuth {
			t.Fatalf("err = %v, want a mailbox error at step auth", err)
		}
		if strings.Contains(err.Error(), "bad-token") || ts.calls.Load() != 2 {
			t.Errorf("err = %v after %d token calls (want no token in it, 2 calls)", err, ts.calls.Load())
		}
	})
	t.Run("token-source-fails", func(t *testing.T) {
		_, err := probe("", imapsrc.TokenSourceFunc(func(context.Context) (string, error) { return "", errors.New("refresh denied") }))
		if !errors.Is(err, migrate.ErrMailbox) || stepOf(err) != imapsrc.StepAuth || !strings.Contains(err.Error(), "refresh denied") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("password-still-works", func(t *testing.T) {
		res, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext,
			Username: "alice", Password: "secret", AuthMechanism: imapsrc.MechPlain})
		if err != nil || res.Mechanism != imapsrc.MechPlain {
			t.Errorf("PLAIN: %v, %+v", err, res)
		}
	})
}

func TestProbe(t *testing.T) {
	fx := migratetest.Sample()
	var total int64
	for _, f := range fx.Folders {
		for _, m := range f.Messages {
			total += int64(len(m.Raw))
		}
	}
	t.Run("dovecot", func(t *testing.T) {
		srv := startDovecot(t, dovecottest.LayoutCourier, fx)
		res, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Messages != fx.Count() || res.Bytes != total || res.SizeFrom != "STATUS=SIZE" || res.Mechanism != imapsrc.MechLogin {
			t.Errorf("probe: %d messages, %d bytes from %s, mech %s; want %d, %d", res.Messages, res.Bytes, res.SizeFrom, res.Mechanism, fx.Count(), total)
		}
		if !slices.Contains(res.Capabilities, "CONDSTORE") || res.Namespaces == nil || res.Namespaces.Personal[0].Prefix != "INBOX." {
			t.Errorf("capabilities %v, namespaces %+v", res.Capabilities, res.Namespaces)
		}
		for _, f := range res.Folders {
			if !f.NoSelect && (f.ModSeq == 0 || f.Bytes < 0) {
				t.Errorf("folder %s: ModSeq %d, Bytes %d", f.Name, f.ModSeq, f.Bytes)
			}
		}
	})
	t.Run("no-status-size", func(t *testing.T) {
		srv := startMemOpts(t, &imapsrctest.MemOptions{Caps: imap.CapSet{imap.CapIMAP4rev1: {}}})
		seed(t, srv.Addr(), "alice", "secret", fx)
		opts := &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret"}
		res, err := imapsrc.Probe(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Messages != fx.Count() || res.Bytes != total || res.SizeFrom != "RFC822.SIZE" {
			t.Errorf("probe: %d messages, %d bytes from %s; want %d, %d", res.Messages, res.Bytes, res.SizeFrom, fx.Count(), total)
		}
		src := imapsrc.New(opts)
		closeSrc(t, src)
		folders, err := src.Folders(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			if f.Bytes != -1 || f.ModSeq != 0 {
				t.Errorf("folder %s on a server without STATUS=SIZE and CONDSTORE: Bytes %d, ModSeq %d", f.Name, f.Bytes, f.ModSeq)
			}
		}
	})
	t.Run("dial-fails", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nobody listens there now
		_, err = imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret"})
		if stepOf(err) != imapsrc.StepDial || !errors.Is(err, migrate.ErrTransient) {
			t.Errorf("err = %v (step %q), want a transient error at step dial", err, stepOf(err))
		}
	})
	t.Run("auth-fails", func(t *testing.T) {
		_, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: startMem(t, "alice", "secret"), Security: imapsrc.Plaintext, Username: "alice", Password: "nope-Secret-123"})
		if stepOf(err) != imapsrc.StepAuth || !errors.Is(err, migrate.ErrMailbox) || strings.Contains(err.Error(), "nope-Secret-123") {
			t.Errorf("err = %v (step %q), want a mailbox error at step auth", err, stepOf(err))
		}
	})
}
