package exchangetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTLSServer(t *testing.T) {
	s := NewTLSServer(nil)
	defer s.Close()
	s.AddMailbox("u1")
	require.True(t, strings.HasPrefix(s.URL(), "https://"))
	r := do(t, s, "GET", "/v1.0/users/U1/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
}
