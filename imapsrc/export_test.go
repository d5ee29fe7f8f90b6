package imapsrc

// Internals under test in package imapsrc_test.
var (
	ParseMessageID = parseMessageID
	ReconnectWait  = reconnectWait
)
