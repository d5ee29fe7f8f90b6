// Package imapsrc is a migrate.Source over an IMAP server, built on
// github.com/emersion/go-imap/v2.
//
// A Source reads one mailbox over one IMAP connection, opened on first use
// and reopened (a bounded number of times) when it drops in the middle of a
// List or a Fetch; the operation then resumes after the last message already
// handed to the callback, so nothing is delivered twice and nothing is lost.
// Folders are only ever opened read-only (EXAMINE) and bodies are fetched
// with BODY.PEEK[], so the source mailbox is never altered (no \Seen).
//
// Folder names are decoded from modified UTF-7; the personal namespace
// prefix (NAMESPACE, "INBOX." on Courier-style servers) is removed from
// Folder.Path; roles come from SPECIAL-USE attributes (RFC 6154) and, for
// servers without them, from well-known and localized folder names.
//
// Admin access to another user's mailbox is either a Dovecot-style master
// login ("alice*admin" as Username) or SASL PLAIN with an authorization
// identity (Options.AuthzID).
package imapsrc
