package imapsrc

// Internals under test in package imapsrc_test.
var (
	ParseMessageID = parseMessageID
	ReconnectWait  = reconnectWait
	ErrIdleDrop    = errIdleDrop
)

// MaxHeaderPeek is how much of a body Fetch reads ahead for its
// Message-ID.
const MaxHeaderPeek = maxHeaderPeek

// IdleClosed returns, for each connection idle in s's pool, the channel
// that go-imap closes once it has seen that connection end: a test waits
// on them to know that the Source can see a drop.
func (s *Source) IdleClosed() []<-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []<-chan struct{}
	for _, pc := range s.idle {
		out = append(out, pc.c.Closed())
	}
	return out
}
