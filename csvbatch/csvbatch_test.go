package csvbatch_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/csvbatch"
)

func TestReadValid(t *testing.T) {
	in := "\ufeffEmailAddress,UserName,Password,UserRoot,Department\r\n" +
		"alice@contoso.com,alice*admin,s3cret pass ,/users/alice,Sales\r\n" +
		"\r\n" +
		"bob@contoso.com,bob,\"p,w\"\"d\",,\r\n"
	rows, err := csvbatch.Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	a, b := rows[0], rows[1]
	if a.Line != 2 || a.UserName != "alice*admin" || a.Password != "s3cret pass " || a.UserRoot != "/users/alice" || a.Extra["Department"] != "Sales" {
		t.Errorf("row a: %+v", a)
	}
	if b.Line != 4 || b.Password != `p,w"d` || b.UserRoot != "" {
		t.Errorf("row b: %+v", b)
	}
	if strings.Contains(a.String(), "s3cret") {
		t.Errorf("String shows the password: %s", a)
	}
}

func TestReadHeaderAnyOrderAnyCase(t *testing.T) {
	rows, err := csvbatch.Read(strings.NewReader("password,EMAILADDRESS,username\nx,a@b.c,u\n"))
	if err != nil || len(rows) != 1 || rows[0].EmailAddress != "a@b.c" || rows[0].Password != "x" {
		t.Fatalf("%+v %v", rows, err)
	}
}

func TestReadErrorsNameTheirLines(t *testing.T) {
	in := "EmailAddress,UserName,Password\n" +
		"alice@contoso.com,alice,topsecret1\n" +
		"not-an-address,bob,topsecret2\n" +
		"carol@contoso.com,,topsecret3\n" +
		"ALICE@contoso.com,alice2,topsecret4\n" +
		"dave@contoso.com,dave,\"unterminated topsecret5\n"
	rows, err := csvbatch.Read(strings.NewReader(in))
	if len(rows) != 1 || rows[0].EmailAddress != "alice@contoso.com" {
		t.Errorf("valid rows: %+v", rows)
	}
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"line 3: EmailAddress \"not-an-address\"", "line 4: empty UserName", "line 5: ALICE@contoso.com is already listed on line 2", "line 6"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "topsecret") {
		t.Errorf("error shows a password: %q", msg)
	}
	var le *csvbatch.LineError
	if !errors.As(err, &le) {
		t.Errorf("not a LineError: %T", err)
	}
}

func TestReadMissingColumn(t *testing.T) {
	_, err := csvbatch.Read(strings.NewReader("EmailAddress,Password\na@b.c,x\n"))
	if !errors.Is(err, csvbatch.ErrMissingColumn) || !strings.Contains(err.Error(), "UserName") {
		t.Errorf("err = %v", err)
	}
	if _, err := csvbatch.Read(strings.NewReader("")); !errors.Is(err, csvbatch.ErrMissingColumn) {
		t.Errorf("empty file: %v", err)
	}
}

func ExampleRead() {
	batch := "EmailAddress,UserName,Password\n" +
		"alice@contoso.com,alice,Pa55word!\n" +
		"bob@contoso.com,bob,\n"
	rows, err := csvbatch.Read(strings.NewReader(batch))
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Println(err)
	// Output:
	// line 2: alice@contoso.com (login alice)
	// csvbatch: line 3: empty Password
}

// TestReadStrayQuote: a quote inside an unquoted field, in the first
// field or another, is an error that names the line, without the field's
// text, and the rows around it still count.
func TestReadStrayQuote(t *testing.T) {
	in := "EmailAddress,UserName,Password\n" +
		"al\"ice@contoso.com,alice,topsecret1\n" +
		"bob@contoso.com,bob,top\"secret2\n" +
		"carol@contoso.com,carol,topsecret3\n"
	rows, err := csvbatch.Read(strings.NewReader(in))
	if len(rows) != 1 || rows[0].EmailAddress != "carol@contoso.com" {
		t.Errorf("valid rows: %+v", rows)
	}
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"csvbatch: line 2: ", "csvbatch: line 3: ", "bare \""} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, secret := range []string{"topsecret", "al\"ice"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
	var le *csvbatch.LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Errorf("first LineError: %+v", le)
	}
}

// TestReadWithoutHeader: a file whose first line is a mailbox is refused
// without showing that line, which holds a password.
func TestReadWithoutHeader(t *testing.T) {
	_, err := csvbatch.Read(strings.NewReader("alice@contoso.com,alice,topsecret1\nbob@contoso.com,bob,topsecret2\n"))
	if !errors.Is(err, csvbatch.ErrMissingColumn) {
		t.Fatalf("err = %v, want ErrMissingColumn", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "line 1") || !strings.Contains(msg, "EmailAddress, UserName, Password") {
		t.Errorf("error %q does not say what is missing where", msg)
	}
	for _, secret := range []string{"topsecret", "alice"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
	// A broken first line is refused the same way.
	_, err = csvbatch.Read(strings.NewReader("alice@contoso.com,alice,top\"secret1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || strings.Contains(err.Error(), "secret") {
		t.Errorf("broken first line: %v", err)
	}
}

// TestReadPasswordSpaces: a password's leading and trailing spaces, quoted
// or not, are part of it; other fields are trimmed.
func TestReadPasswordSpaces(t *testing.T) {
	in := "EmailAddress, UserName ,Password,Department\n" +
		" alice@contoso.com , alice ,  two leading,  Sales \n" +
		"bob@contoso.com,bob,\"  quoted, with spaces  \",\n" +
		"carol@contoso.com,carol,   ,\n"
	rows, err := csvbatch.Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ addr, user, pass string }{
		{"alice@contoso.com", "alice", "  two leading"},
		{"bob@contoso.com", "bob", "  quoted, with spaces  "},
		{"carol@contoso.com", "carol", "   "},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.EmailAddress != w.addr || r.UserName != w.user || r.Password != w.pass {
			t.Errorf("row %d: %q %q %q, want %q %q %q", i, r.EmailAddress, r.UserName, r.Password, w.addr, w.user, w.pass)
		}
	}
	if rows[0].Extra["Department"] != "Sales" {
		t.Errorf("Extra: %q", rows[0].Extra)
	}
}

// TestReadBOMBeforeQuotedHeader: Excel's byte order mark before a quoted
// header is skipped.
func TestReadBOMBeforeQuotedHeader(t *testing.T) {
	in := "\ufeff\"EmailAddress\",\"UserName\",\"Password\"\r\n\"alice@contoso.com\",\"alice\",\"pw\"\r\n"
	rows, err := csvbatch.Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].EmailAddress != "alice@contoso.com" || rows[0].Password != "pw" || rows[0].Line != 2 {
		t.Errorf("rows: %+v", rows)
	}
}
