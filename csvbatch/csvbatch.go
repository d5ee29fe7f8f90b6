// Package csvbatch reads the CSV file of an IMAP migration batch in the
// format Exchange Online's IMAP migration takes: a header row, then one
// row per mailbox with the columns EmailAddress (the target mailbox),
// UserName and Password (the IMAP login) and, optionally, UserRoot (the
// user's folder tree when an administrator's credentials are used).
// Columns may come in any order and in any case; other columns are kept.
//
// See https://learn.microsoft.com/exchange/mailbox-migration/migrating-imap-mailboxes/migrate-other-types-of-imap-mailboxes
// ("CSV files for IMAP migration batches").
//
// A malformed row yields an error that names its line; passwords never
// appear in errors or in a Row's String.
package csvbatch

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// Row is one mailbox of a batch.
type Row struct {
	// Line is the row's line number in the file (the header is line 1).
	Line int
	// EmailAddress is the target Exchange Online mailbox.
	EmailAddress string
	// UserName and Password log in to the IMAP server. UserName may be an
	// admin form such as Dovecot's "user*admin".
	UserName string
	Password string
	// UserRoot is the user's root folder for admin access, or "".
	UserRoot string
	// Extra holds the other columns by their header name.
	Extra map[string]string
}

// String describes the row without its password.
func (r Row) String() string {
	s := fmt.Sprintf("line %d: %s (login %s)", r.Line, r.EmailAddress, r.UserName)
	if r.UserRoot != "" {
		s += ", root " + r.UserRoot
	}
	return s
}

// LineError is an error in one line of the file.
type LineError struct {
	Line int
	Err  error
}

// Error implements error.
func (e *LineError) Error() string { return fmt.Sprintf("csvbatch: line %d: %v", e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// ErrMissingColumn is returned when the header lacks a required column.
var ErrMissingColumn = errors.New("missing required column")

var required = []string{"EmailAddress", "UserName", "Password"}

// Read parses a whole batch. It returns every valid row and, joined in one
// error, a LineError for every malformed row (missing field, invalid
// address, a mailbox listed twice, broken quoting), so that a file is
// fixed in one pass. A missing required column or an unreadable header is
// an error on its own.
//
// A UTF-8 byte order mark (which Excel writes) before the header is
// skipped. Fields other than Password are trimmed of surrounding spaces;
// the password is kept exactly as written, spaces included, so a field
// must begin with its quote, if it has one, right after the comma. No
// error shows a field's content from the header's line on, since a file
// without its header row has a password there.
func Read(r io.Reader) ([]Row, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(len(utf8BOM)); err == nil && string(bom) == utf8BOM {
		br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	// Not TrimLeadingSpace: it would strip a password's leading spaces.
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("csvbatch: empty file: %w", ErrMissingColumn)
	}
	if err != nil {
		return nil, lineError(1, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		col[strings.ToLower(h)] = i
		header[i] = h
	}
	var missing []string
	for _, name := range required {
		if _, ok := col[strings.ToLower(name)]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		// The line is not shown: a file without a header row has a
		// mailbox, password included, on its first line.
		return nil, &LineError{Line: 1, Err: fmt.Errorf("%w %s: the first line must be the header, naming the columns EmailAddress, UserName, Password and optionally UserRoot (its content is not shown, as it may hold a password)",
			ErrMissingColumn, strings.Join(missing, ", "))}
	}
	field := func(rec []string, name string) string {
		if i, ok := col[strings.ToLower(name)]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []Row
	var errs []error
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var perr *csv.ParseError
			if !errors.As(err, &perr) {
				errs = append(errs, fmt.Errorf("csvbatch: %w", err)) // a read error: nothing more to read
				break
			}
			errs = append(errs, lineError(perr.StartLine, err))
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		row := Row{Line: line, EmailAddress: field(rec, "EmailAddress"), UserName: field(rec, "UserName"),
			UserRoot: field(rec, "UserRoot")}
		// The password is taken as written: spaces may be part of it.
		if i := col["password"]; i < len(rec) {
			row.Password = rec[i]
		}
		for i, h := range header {
			switch strings.ToLower(h) {
			case "emailaddress", "username", "password", "userroot":
			default:
				if i < len(rec) {
					if row.Extra == nil {
						row.Extra = map[string]string{}
					}
					row.Extra[h] = strings.TrimSpace(rec[i])
				}
			}
		}
		if err := row.validate(); err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			continue
		}
		key := strings.ToLower(row.EmailAddress)
		if first, dup := seen[key]; dup {
			errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("%s is already listed on line %d", row.EmailAddress, first)})
			continue
		}
		seen[key] = line
		rows = append(rows, row)
	}
	return rows, errors.Join(errs...)
}

const utf8BOM = "\ufeff"

func (r Row) validate() error {
	var missing []string
	if r.EmailAddress == "" {
		missing = append(missing, "EmailAddress")
	}
	if r.UserName == "" {
		missing = append(missing, "UserName")
	}
	if r.Password == "" {
		missing = append(missing, "Password")
	}
	if len(missing) > 0 {
		return fmt.Errorf("empty %s", strings.Join(missing, ", "))
	}
	if a, err := mail.ParseAddress(r.EmailAddress); err != nil || a.Address != r.EmailAddress {
		return fmt.Errorf("EmailAddress %q is not an email address", r.EmailAddress)
	}
	return nil
}

// lineError is the LineError of a CSV parse error of the record that
// starts on line start. It keeps only the kind of error and where it is,
// never the CSV reader's quoting of the offending text, which may hold a
// password.
func lineError(start int, err error) error {
	var perr *csv.ParseError
	if !errors.As(err, &perr) {
		return &LineError{Line: start, Err: err}
	}
	where := fmt.Sprintf("column %d", perr.Column)
	if perr.Line != start {
		where = fmt.Sprintf("line %d, column %d", perr.Line, perr.Column)
	}
	msg := perr.Err.Error()
	if errors.Is(perr.Err, csv.ErrBareQuote) || errors.Is(perr.Err, csv.ErrQuote) {
		msg += " (a quoted field must be quoted from its first character to its last, with each \" inside doubled)"
	}
	return &LineError{Line: start, Err: &parseError{msg: msg + " at " + where, err: perr.Err}}
}

// parseError is a CSV syntax error without the offending text.
type parseError struct {
	msg string
	err error
}

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return e.err }
