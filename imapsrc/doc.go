// Package imapsrc is a migrate.Source over an IMAP server, built on
// github.com/emersion/go-imap/v2.
//
// A Source reads one mailbox over up to Options.MaxConnections
// connections (default 1), opened on demand and kept between operations;
// a ServerLimit shared by the Sources of a batch caps the connections to
// one server. A connection that drops in the middle of a List, a
// ListChanges or a Fetch is reopened and the operation resumes after the
// last message already handed to the callback, so nothing is delivered
// twice and nothing is lost; each reconnect, including that of a
// connection found dead between two operations, is counted
// (Source.Reconnects) and reported as a migrate.EventReconnected to the
// observer that the operation's context carries (migrate.WithObserver,
// which the Engine sets for each run). A server that cannot be reached
// (restarting, failing over, behind a network blip) is waited for: the
// operation tries again, with growing pauses, for up to
// Options.ReconnectFor (default two minutes) without a connection made
// before it fails with an error matching migrate.ErrTransient. A
// connection that is made but drops again and again while the operation
// makes no progress (a server that crashes on one message) is given up
// after MaxReconnects drops in a row. A refused login is never retried.
// Folders are only ever opened read-only (EXAMINE) and bodies are fetched
// with BODY.PEEK[], so the source mailbox is never altered (no \Seen).
//
// Fetch pipelines its UID FETCH commands within a budget of bytes in
// flight (Options.MaxBytesInFlight) and streams every body from the
// socket: memory does not grow with the folder. ListChanges lists what
// changed since a mod-sequence with CONDSTORE (RFC 7162) and reports
// migrate.ErrNoModSeq where the server cannot. Probe is the "test the
// connection" step: capabilities, namespaces, folders with their message
// counts and sizes, and a StepError saying which step failed.
//
// A broken or hostile server cannot make a Source read or hold without
// bound: a body is handed over with the size it is sent with, never more
// than Options.MaxMessageSize (a larger one fails as an item,
// ErrMessageTooLarge); List keeps at most 64 KB of a Message-ID answer;
// UIDs refuses a UID SEARCH answer of more UIDs than the folder can hold
// (ErrBadResponse, failing that folder); and a folder whose STATUS is
// refused is listed with Folder.Err set, so that it alone fails, in the
// report.
//
// Folder names are decoded from modified UTF-7; the personal namespace
// prefix (NAMESPACE, "INBOX." on Courier-style servers) or the admin's
// Options.UserRoot is removed from Folder.Path, which is split on the
// server's delimiter only (on a "."-delimited server, "INBOX.a/b" is the
// one folder ["a/b"]); roles come from SPECIAL-USE attributes (RFC 6154)
// and, for servers without them, from well-known and localized folder
// names (Options.RoleNames, by default DefaultRoleNames).
//
// Logins are LOGIN, SASL PLAIN (with an authorization identity for admin
// access, Options.AuthzID; or Dovecot's "alice*admin" as Username), and
// OAuth 2.0 with XOAUTH2 or OAUTHBEARER from an Options.TokenSource,
// asked again once when the server rejects a token. Neither passwords
// nor tokens appear in errors or logs.
package imapsrc
