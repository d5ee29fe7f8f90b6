// Package exchange is a migrate.Sink that writes Exchange Online mailboxes
// through Microsoft Graph, with github.com/microsoftgraph/msgraph-sdk-go.
//
// One Client serves one tenant: it holds one msgraph request adapter, one
// token cache, one HTTP pipeline and one throttling budget per mailbox.
// Client.Mailbox returns the Sink for one user of that tenant:
//
//	cred, _ := azidentity.NewClientSecretCredential(tenantID, clientID, secret, nil)
//	c, _ := exchange.NewClient(&exchange.Options{Credential: cred})
//	sink := c.Mailbox("alice@contoso.com")
//
// # Authentication
//
// Options.Credential is any azcore.TokenCredential. For an unattended
// migration, use an app registration with application permissions and
// either a client secret (azidentity.NewClientSecretCredential) or, better
// for production, a certificate (azidentity.ParseCertificates and
// azidentity.NewClientCertificateCredential); see the examples of
// NewClient. The Client asks for "https://graph.microsoft.com/.default",
// caches the token, renews it five minutes before it expires and once more
// when Graph answers 401, and answers Continuous Access Evaluation claims
// challenges. Tokens never appear in errors or logs.
//
// # Permissions
//
// The app registration needs these Microsoft Graph application
// permissions, with admin consent (an application access policy can
// restrict them to the migrated mailboxes):
//
//   - Mail-Advanced.ReadWrite.All: Put of messages up to MaxImportSize,
//     which imports their MIME with POST .../mailFolders/{id}/importMime
//     (beta, https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta),
//     under either Options.ReceivedDates: the default imports signed and
//     encrypted messages, and every message on a tenant that honours the
//     delivery-time PATCH, which it probes with importMime
//     (Mailbox.ProbeReceivedDates).
//   - Mail.ReadWrite: everything else: EnsureFolder, drafts, the JSON
//     create with its attachments and upload sessions, the flag and
//     watermark PATCH after an import, SetFlags, SetFlagsBatch ($batch),
//     FindWatermark and FindMessageID.
//
// # Throttling and retries
//
// Exchange Online throttles per app per mailbox: 4 concurrent requests,
// 10,000 requests per 10 minutes, 150 MB of upload per 5 minutes
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
// The Client paces each mailbox to Options.Budget (DefaultBudget: those
// limits) before Graph has to say no: a semaphore for concurrency and two
// token buckets for requests and upload bytes; see Budget.
//
// What still comes back as 429, 503 or 504, and dropped connections, is
// retried in one place, a RoundTripper at the bottom of the HTTP pipeline
// (msgraph-sdk-go's own RetryHandler is left out, so that retries are never
// multiplied), after Retry-After (at most 10 minutes, the longest of
// Graph's throttling windows, however long the answer asks) or an
// exponential backoff, Options.MaxRetries times. A Retry-After pauses
// every request of that mailbox, not only the refused one. Each such answer is reported as a migrate.EventThrottled,
// with the pause in Event.Wait, through migrate.Notify on the context of
// the call that was throttled: the migrate.Engine's observer receives it
// (a caller of its own installs one with migrate.WithObserver). $batch
// sub-responses, which no middleware sees, are retried by SetFlagsBatch the
// same way. A creating POST whose answer was lost (connection dropped, 504)
// is not sent again before Put has looked for the item it may have created.
//
// # Fidelity
//
// Graph documents no way to give an imported item the source's received
// date ("Received" in Outlook, receivedDateTime in Graph, by which Outlook
// orders folders), and rebuilds the MIME of an item it creates from JSON.
// Put stores each message, non-draft (or draft for \Draft), with its
// flags, and stamps it with WatermarkProperty = m.ID.String(), through
// one of two paths:
//
//   - importMime, for messages up to MaxImportSize (3 MB): the exact
//     MIME, byte for byte, and the source's received date if the tenant
//     honours PidTagMessageDeliveryTime in the PATCH that follows the
//     import, which the Client probes once per tenant
//     (Mailbox.ProbeReceivedDates), else the time of the import.
//   - The JSON create, for messages over MaxImportSize and for those that
//     the policy sends there: the source's received date, and a MIME
//     that Exchange rebuilds from the item's fields.
//
// Options.ReceivedDates decides what a message that fits gives up on a
// tenant that does not honour that PATCH. ReceivedDateFromSource, the
// default, keeps its received date through the JSON create, except for
// signed and encrypted messages (S/MIME, PGP/MIME), which keep their MIME
// through importMime; ReceivedDateAtImport keeps every MIME through
// importMime, received at the time of the import, and does not probe.
// On a tenant that honours it, the default keeps both for every message
// that fits. See ReceivedDates. Each Put reports which of these its run
// gets as a migrate.EventNotice (migrate.MailboxReport.Notices).
//
// Either way the sent date is the message's Date header.
//
// importMime. A message of at most MaxImportSize bytes is imported byte
// for byte with POST /beta/users/{id}/mailFolders/{id}/importMime, whose
// body is the base64 of the MIME with Content-Type text/plain and whose
// answer is the new message, 201 Created, "as if it was delivered"
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta);
// a message flagged \Draft is created as a draft from the same MIME with
// POST /users/{id}/mailFolders/{id}/messages. Put then sets the flags and
// the watermark in one PATCH /users/{id}/messages/{id}
// (https://learn.microsoft.com/graph/api/message-update): isRead from
// \Seen, flag.flagStatus from \Flagged, categories from keywords
// (Options.Keywords), PidTagLastVerbExecuted = 102 from \Answered or else
// 104 from $Forwarded (see Mailbox.SetFlags) and, when the tenant honours
// it, PidTagMessageDeliveryTime (0x0E06) = m.InternalDate. If that PATCH
// fails, Put deletes the imported message, so that a retry does not
// leave a duplicate behind, and returns the error. Otherwise the received
// date is the time of the import: importMime takes nothing but the MIME.
//
// The JSON create. A message over MaxImportSize (up to MaxMessageSize),
// or a non-draft message that ReceivedDateFromSource sends there, is
// read in one streaming pass (memory holds the main body and attachments
// under 256 KB; larger attachments are spooled to a temporary file, and
// so is the copy of a message over 3 MB kept for a degraded item), as
// leniently as mail readers read it (a missing closing boundary, an mbox
// "From " line, header lines without a colon, unknown charsets and raw
// 8-bit headers, broken base64 or quoted-printable, NUL bytes and lines
// of any length are all read, see below), and created with POST /users/{id}/mailFolders/{id}/messages and JSON
// (https://learn.microsoft.com/graph/api/user-post-messages): from,
// sender, toRecipients, ccRecipients, bccRecipients, replyTo, subject,
// internetMessageId, importance (Importance or X-Priority), the main body
// (text/html preferred to text/plain), the x- headers as
// internetMessageHeaders, isRead, flag, categories and, as extended
// properties set at creation, PidTagMessageFlags (0x0E07: 1 read or 0
// unread, non-draft), PidTagMessageDeliveryTime (0x0E06: m.InternalDate,
// the received date), PidTagClientSubmitTime (0x0039: the Date header,
// the sent date) and PidTagLastVerbExecuted (0x1081: 102 for \Answered,
// else 104 for $Forwarded).
// Attachments go into the same request while it stays under Graph's 4 MB;
// the others follow, each with POST .../attachments or, from 3 MB, an
// upload session whose 3.75 MB chunks are PUT to the uploadUrl without
// the Authorization header
// (https://learn.microsoft.com/graph/outlook-large-attachments). A
// message created in several requests carries PendingProperty until its
// last attachment is in, then the watermark; an interrupted earlier
// attempt's partial copy is deleted before the next one starts.
//
// What the JSON create cannot keep (Exchange rebuilds the MIME from the
// fields, so GET .../$value is not the source's bytes):
//
//   - the MIME bytes themselves: boundaries, transfer encodings, header
//     folding and order, charsets (bodies become UTF-8);
//   - header fields other than those above: Received, Return-Path,
//     Authentication-Results, DKIM-Signature, List-*, In-Reply-To,
//     References (so Outlook's threading relies on the subject), Exchange's
//     own X-MS-Exchange-Organization-* headers, and any x- header Graph
//     refuses;
//   - more than one body: a second text part or the text/plain
//     alternative of an HTML message (the HTML one is kept); extra text
//     parts become attachments;
//   - the structure of S/MIME and PGP/MIME messages: a signed message
//     loses its valid signature (the smime.p7s part becomes an ordinary
//     attachment) and an encrypted one becomes an item with the encrypted
//     part as attachment;
//   - nested messages (message/rfc822) as items: each becomes a .eml file
//     attachment;
//   - attachment metadata beyond name, type, Content-ID and inline
//     (dates, size parameters, Content-Description).
//
// Messages that cannot go as they are. A message that importMime
// refuses (a 400 such as ErrorMimeContentInvalid: Graph does not say
// which MIME it refuses) is created from JSON instead, as above: its
// received date is the source's, its MIME is rebuilt, and it counts as
// copied; the run's report says once that this happened
// (migrate.MailboxReport.Notices). A message that cannot be created from
// JSON either, because it cannot be taken apart (MIME nested more than
// 20 deep, a multipart whose boundary never appears, a main body over
// 3 MB, fields over Graph's 4 MB request) or because Graph refuses that
// create too, is stored degraded: an item with From, To, Subject,
// Message-ID and Date as far as they can be read, the sent date from the
// Date header or else INTERNALDATE, the received date from INTERNALDATE,
// its flags and watermark, a short text body that says it could not be
// migrated as it was and why, and the original message attached
// unchanged, byte for byte, as a message/rfc822 file named after the
// subject (or original.eml); a large original goes through an upload
// session, and the item is pending until it is in. Should Graph refuse
// that item's headers, it is made once more without them. Put then
// returns the item's id with an error matching migrate.ErrDegraded whose
// text says why, which the migrate.Engine commits and reports as
// degraded, not failed. The same holds on every path: a message over
// MaxImportSize that cannot be created from JSON is degraded too.
//
// Messages over MaxMessageSize fail with an error matching
// migrate.ErrItem, as do those that Graph refuses in every form, for a
// reason no other form avoids: over the mailbox's size limit
// (ErrorMessageSizeExceeded), say.
package exchange
