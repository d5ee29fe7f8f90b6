package imapsrc_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

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
				require.NoError(t, err)
				assert.Equal(t, fx.Count(), res.Messages, "probe over %s: messages", tc.sec)
				return
			}
			require.Error(t, err, "connected")
			assert.Equal(t, tc.wantStep, stepOf(err), "step of %v", err)
			assert.ErrorIs(t, err, migrate.ErrMailbox)
			assert.NotContains(t, err.Error(), "secret", "the error contains the password")
			t.Logf("error: %v", err)
		})
	}
}

func TestPlaintextRefusedByDefault(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	for _, sec := range []imapsrc.Security{imapsrc.TLS, imapsrc.StartTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			src := imapsrc.New(&imapsrc.Options{Addr: addr, Security: sec, Username: "alice", Password: "secret", DialTimeout: 5 * time.Second})
			closeSrc(t, src)
			_, err := src.Folders(context.Background())
			require.Error(t, err, "connected to a plaintext server without Security: Plaintext")
			assert.ErrorIs(t, err, migrate.ErrMailbox)
			assert.Contains(t, strings.ToLower(err.Error()), "tls", "the error is about TLS")
			t.Logf("error: %v", err)
		})
	}
}

// TestReconnectWait: no pause before the first reconnect attempt, then
// 100ms, doubled each time, capped at 5s, each jittered into its upper
// half.
func TestReconnectWait(t *testing.T) {
	want := []time.Duration{0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for n, w := range want {
		w *= time.Millisecond
		for range 50 {
			got := imapsrc.ReconnectWait(n)
			assert.GreaterOrEqual(t, got, w/2, "attempt %d", n)
			assert.LessOrEqual(t, got, w, "attempt %d", n)
		}
	}
}

// TestTLSHandshakeCutOff: a server that accepts connections and closes
// them at once, before the TLS handshake is through (one starting up, a
// load balancer without a backend), may come back: the Source tries
// again until ReconnectFor has passed, then fails with a transient
// error, not a mailbox error as for a certificate it cannot trust.
func TestTLSHandshakeCutOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	src := imapsrc.New(&imapsrc.Options{Addr: ln.Addr().String(), Username: "alice", Password: "secret",
		DialTimeout: 5 * time.Second, ReconnectFor: 300 * time.Millisecond})
	closeSrc(t, src)
	_, err = src.Folders(context.Background())
	require.ErrorIs(t, err, migrate.ErrTransient)
	assert.NotErrorIs(t, err, migrate.ErrMailbox)
	assert.Equal(t, imapsrc.StepTLS, stepOf(err), "step of %v", err)
	assert.Contains(t, err.Error(), "unreachable for", "the error says how long it tried")
	assert.GreaterOrEqual(t, int(accepts.Load()), 2, "connections attempted")
	t.Logf("error after %d connections: %v", accepts.Load(), err)
}
