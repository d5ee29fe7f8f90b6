// Package exchangetest is a Microsoft Graph mail emulator: an httptest
// server that behaves like Exchange Online's documented Graph mail API, so
// that a real Graph client (msgraph-sdk-go, or plain net/http) can be
// tested over real HTTP without a tenant. It uses only the standard
// library.
//
//	s := exchangetest.NewServer(nil)
//	defer s.Close()
//	s.AddMailbox("alice@contoso.com")
//	// point the client at s.URL()+"/v1.0" (and "/beta" for importMime),
//	// with any bearer token and s.Client()
//	msgs := s.Messages("alice@contoso.com")
//
// Both /v1.0 and /beta serve the same API. {user} is an id or UPN added
// with AddMailbox (case-insensitive); a folder {id} is a folder id or a
// well-known name. The server inspects (Folders, Messages, Message),
// injects faults (FailNext, ResetNext, RejectMIME, SetQuotaExceeded) and
// counts (Stats).
//
// # Endpoints
//
//	GET   /users/{user}/mailFolders                      top-level folders (under msgfolderroot)
//	POST  /users/{user}/mailFolders                      create a top-level folder
//	GET   /users/{user}/mailFolders/{id}                 a folder (also .../childFolders/{id})
//	GET   /users/{user}/mailFolders/{id}/childFolders    children; $filter, $top, $skip, $count
//	POST  /users/{user}/mailFolders/{id}/childFolders    create a child folder
//	POST  /users/{user}/mailFolders/{id}/importMime      import base64 MIME as a non-draft
//	GET   /users/{user}[/mailFolders/{id}]/messages      list; $filter, $top, $skip, $select, $expand, $count
//	POST  /users/{user}[/mailFolders/{id}]/messages      create (text/plain MIME or JSON)
//	GET   /users/{user}[/mailFolders/{id}]/messages/{id}          $select, $expand
//	PATCH /users/{user}[/mailFolders/{id}]/messages/{id}
//	DELETE /users/{user}[/mailFolders/{id}]/messages/{id}
//	GET   /users/{user}[/mailFolders/{id}]/messages/{id}/$value   the MIME
//	POST  /$batch                                        JSON batching
//
// # Rules and their sources
//
//   - Every request needs "Authorization: Bearer <token>", else 401
//     InvalidAuthenticationToken "Access token is empty."; Options.Token
//     restricts the accepted token
//     (https://learn.microsoft.com/graph/auth/auth-concepts,
//     https://learn.microsoft.com/graph/resolve-auth-errors).
//   - A user that was never added answers 404 MailboxNotEnabledForRESTAPI
//     (https://github.com/microsoftgraph/microsoft-graph-docs/issues/10481).
//   - Requests are limited to 4 MB (Options.MaxRequestBytes) of
//     uncompressed body, else 413
//     (https://learn.microsoft.com/graph/api/user-post-messages,
//     https://learn.microsoft.com/graph/outlook-large-attachments); the
//     error code RequestEntityTooLarge is the emulator's choice, as
//     https://learn.microsoft.com/graph/errors names none. Bodies may be
//     gzip-compressed (Content-Encoding: gzip), as msgraph-sdk-go sends them.
//   - Well-known folder names may stand in for ids: msgfolderroot, inbox,
//     drafts, sentitems, deleteditems, junkemail, archive, outbox,
//     conversationhistory
//     (https://learn.microsoft.com/graph/api/resources/mailfolder).
//   - Creating a folder whose displayName exists under the same parent
//     (case-insensitive) answers 409 ErrorFolderExists
//     (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders);
//     look it up with $filter=displayName eq 'Name' instead
//     (https://learn.microsoft.com/graph/filter-query-parameter).
//   - importMime (beta) takes Content-Type text/plain and a body that is
//     only the base64 MIME, no JSON envelope or parameters; it answers 201
//     with a message whose isDraft is false, "as if it was delivered", and
//     keeps the full MIME (GET .../$value returns it byte for byte)
//     (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
//   - POST .../messages with text/plain base64 MIME always makes a draft;
//     bad base64 answers 400 ErrorMimeContentInvalidBase64String
//     (https://learn.microsoft.com/graph/api/user-post-messages). MIME
//     whose header block does not parse (net/mail), or that RejectMIME
//     matches, answers 400 ErrorMimeContentInvalid
//     (https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).
//   - Dates of MIME imports: sentDateTime is the Date header;
//     receivedDateTime is the time of import. No Microsoft page says how
//     importMime sets receivedDateTime and importMime takes no parameter
//     for it; the create-message MIME example answers receivedDateTime =
//     creation time, and EML uploads to Exchange Online are reported to show
//     the upload time (https://github.com/thunderbird/import-export-tools-ng/issues/237).
//   - A JSON create is a draft unless singleValueExtendedProperties set
//     Integer 0x0E07 (PidTagMessageFlags) without MSGFLAG_UNSENT ("1" makes
//     a read, non-draft item); SystemTime 0x0E06 (PidTagMessageDeliveryTime)
//     sets receivedDateTime and SystemTime 0x0039 (PidTagClientSubmitTime)
//     sets sentDateTime, at creation only (MS-OXCMSG, MS-OXPROPS; reported in
//     https://github.com/mguessan/davmail/pull/517, which also reports that
//     receivedDateTime and sentDateTime in the JSON are ignored). Other
//     extended properties are stored verbatim.
//   - PATCH changes isRead, flag, categories and importance on any message,
//     subject and body on drafts only, and stores extended properties;
//     PidTagMessageFlags is ignored after the first save (MS-OXCMSG), and
//     a later 0x0E06/0x0039 does not move the dates
//     (https://learn.microsoft.com/graph/api/message-update).
//   - Unknown folder or message ids answer 404 ErrorItemNotFound.
//   - $filter supports internetMessageId eq '<…>'
//     (https://learn.microsoft.com/graph/api/resources/message) and
//     singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…');
//     $expand=singleValueExtendedProperties($filter=id eq '…') returns
//     properties. The Name in a property id is case-sensitive, values are
//     not (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
//   - Collections page by $top (default 10) with @odata.nextLink
//     (https://learn.microsoft.com/graph/paging). Messages come in creation
//     order; $orderby is not emulated.
//   - A full mailbox (SetQuotaExceeded) answers every write 403
//     ErrorQuotaExceeded "Mailbox has exceeded maximum mailbox size."
//     (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596).
//   - Throttling per app per mailbox (Options.Budgets, DefaultBudgets):
//     4 concurrent requests, 10,000 requests per 10 minutes, 150 MB of
//     POST/PATCH/PUT per 5 minutes; beyond, 429 ApplicationThrottled with
//     Retry-After seconds; concurrency reads "Application is over its
//     MailboxConcurrency limit." (https://learn.microsoft.com/graph/throttling-limits,
//     https://learn.microsoft.com/graph/throttling). Options.TimeScale
//     shrinks the windows; Options.Latency holds each request so that
//     concurrency can be exceeded.
//   - $batch takes at most 20 requests (else 400); each sub-request goes
//     through the same handler, one at a time, and may be throttled on its
//     own while the envelope answers 200; non-JSON bodies are base64
//     (https://learn.microsoft.com/graph/json-batching).
//
// Fault injection: FailNext answers the next n requests with a status
// (429 carries ApplicationThrottled; Retry-After in whole seconds, rounded
// up); ResetNext closes the next n connections without a response;
// RejectMIME refuses chosen MIME; SetQuotaExceeded fills a mailbox.
//
// Not emulated: attachments and upload sessions, folder update/delete,
// move/copy, delta queries, $orderby and $search, and the "me" alias.
package exchangetest
