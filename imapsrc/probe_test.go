package imapsrc_test

import (
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

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
		require.NoError(t, err)
		assert.Equal(t, fx.Count(), res.Messages, "messages")
		assert.Equal(t, total, res.Bytes, "bytes")
		assert.Equal(t, "STATUS=SIZE", res.SizeFrom)
		assert.Equal(t, imapsrc.MechLogin, res.Mechanism)
		assert.Contains(t, res.Capabilities, "CONDSTORE")
		if assert.NotNil(t, res.Namespaces, "namespaces") && assert.NotEmpty(t, res.Namespaces.Personal, "personal namespaces") {
			assert.Equal(t, "INBOX.", res.Namespaces.Personal[0].Prefix, "personal namespace prefix")
		}
		for _, f := range res.Folders {
			if !f.NoSelect {
				assert.NotZero(t, f.ModSeq, "folder %s: ModSeq", f.Name)
				assert.GreaterOrEqual(t, f.Bytes, int64(0), "folder %s: Bytes", f.Name)
			}
		}
	})
	t.Run("no-status-size", func(t *testing.T) {
		srv := startMemOpts(t, &imapsrctest.MemOptions{Caps: imap.CapSet{imap.CapIMAP4rev1: {}}})
		seed(t, srv.Addr(), "alice", "secret", fx)
		opts := &imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret"}
		res, err := imapsrc.Probe(context.Background(), opts)
		require.NoError(t, err)
		assert.Equal(t, fx.Count(), res.Messages, "messages")
		assert.Equal(t, total, res.Bytes, "bytes")
		assert.Equal(t, "RFC822.SIZE", res.SizeFrom)
		src := imapsrc.New(opts)
		closeSrc(t, src)
		for _, f := range folders(t, src) {
			// A server without STATUS=SIZE and CONDSTORE.
			assert.EqualValues(t, -1, f.Bytes, "folder %s: Bytes", f.Name)
			assert.Zero(t, f.ModSeq, "folder %s: ModSeq", f.Name)
		}
	})
	t.Run("dial-fails", func(t *testing.T) {
		// Probe reports the failure without waiting for the server
		// (ReconnectFor): one attempt.
		var d counter
		_, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: closedAddr(t), Security: imapsrc.Plaintext,
			Username: "alice", Password: "secret", DialContext: d.dial})
		assert.Equal(t, imapsrc.StepDial, stepOf(err), "step of %v", err)
		assert.ErrorIs(t, err, migrate.ErrTransient)
		assert.Equal(t, 1, d.attempts(), "connection attempts")
	})
	t.Run("auth-fails", func(t *testing.T) {
		_, err := imapsrc.Probe(context.Background(), &imapsrc.Options{Addr: startMem(t, "alice", "secret"), Security: imapsrc.Plaintext, Username: "alice", Password: "nope-Secret-123"})
		require.ErrorIs(t, err, migrate.ErrMailbox)
		assert.Equal(t, imapsrc.StepAuth, stepOf(err), "step of %v", err)
		assert.NotContains(t, err.Error(), "nope-Secret-123", "the error contains the password")
	})
}
