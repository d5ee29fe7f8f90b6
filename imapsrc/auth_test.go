package imapsrc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate"
)

func TestBadPassword(t *testing.T) {
	const pw = "wrong-Pa55word-xyzzy"
	check := func(t *testing.T, addr, user string) {
		var d counter
		src := imapsrc.New(&imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: user, Password: pw, DialContext: d.dial})
		closeSrc(t, src)
		_, err := src.Folders(context.Background())
		require.ErrorIs(t, err, migrate.ErrMailbox)
		assert.NotErrorIs(t, err, migrate.ErrTransient)
		assert.Equal(t, imapsrc.StepAuth, stepOf(err), "step of %v", err)
		assert.NotContains(t, err.Error(), pw, "the error contains the password")
		assert.Regexp(t, `^imapsrc: `, err.Error(), "the error has the package prefix")
		assert.Zero(t, src.Reconnects(), "Reconnects after an authentication failure")
		// Refused, not unreachable: the login is not tried again
		// (Options.ReconnectFor does not apply).
		assert.Equal(t, 1, d.attempts(), "connection attempts")
	}
	t.Run("memserver", func(t *testing.T) { check(t, startMem(t, "alice", "secret"), "alice") })
	t.Run("dovecot", func(t *testing.T) { check(t, startDovecot(t, "", nil).Addr(), "alice") })
	t.Run("dovecot-master", func(t *testing.T) { check(t, startDovecot(t, "", nil).Addr(), "alice*admin") })
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
			require.NoError(t, err)
			want := mech
			if want == "" {
				want = imapsrc.MechOAuthBearer // the server offers both
			}
			assert.Equal(t, want, res.Mechanism, "mechanism")
			assert.EqualValues(t, 2, ts.calls.Load(), "token calls")
			assert.Equal(t, []string{want + " alice fail", want + " alice ok"}, srv.Auths()[before:], "what the server saw")
		})
	}
	t.Run("rejected", func(t *testing.T) {
		ts := &tokens{list: []string{"bad-token-1", "bad-token-2"}}
		_, err := probe(imapsrc.MechXOAuth2, ts)
		require.ErrorIs(t, err, migrate.ErrMailbox)
		require.Equal(t, imapsrc.StepAuth, stepOf(err), "step of %v", err)
		assert.NotContains(t, err.Error(), "bad-token", "the error contains a token")
		assert.EqualValues(t, 2, ts.calls.Load(), "token calls")
	})
	t.Run("token-source-fails", func(t *testing.T) {
		_, err := probe("", imapsrc.TokenSourceFunc(func(context.Context) (string, error) { return "", errors.New("refresh denied") }))
		require.ErrorIs(t, err, migrate.ErrMailbox)
		assert.Equal(t, imapsrc.StepAuth, stepOf(err), "step of %v", err)
		assert.ErrorContains(t, err, "refresh denied")
	})
	t.Run("password-still-works", func(t *testing.T) {
		res, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext,
			Username: "alice", Password: "secret", AuthMechanism: imapsrc.MechPlain})
		require.NoError(t, err, "PLAIN")
		assert.Equal(t, imapsrc.MechPlain, res.Mechanism)
	})
}
