package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/server"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    map[string]string
		wantErr []string // parts of the error, all of them
	}{
		{"every profile", `
# facesearch clients
[default]
aws_access_key_id = AKIDONE
aws_secret_access_key = secret/one+

[ci]
aws_access_key_id=AKIDTWO
aws_secret_access_key=secret=two
aws_session_token = ignored
region = eu-west-1
`, map[string]string{"AKIDONE": "secret/one+", "AKIDTWO": "secret=two"}, nil},
		{"config-style section names and odd case", "[profile x]\nAWS_ACCESS_KEY_ID = AKID\n  aws_secret_access_key = s\n",
			map[string]string{"AKID": "s"}, nil},
		{"nested settings skipped", "[a]\ns3 =\n  max_concurrent_requests = 20\n  aws_access_key_id = NOTME\naws_access_key_id = AKID\naws_secret_access_key = s\n",
			map[string]string{"AKID": "s"}, nil},
		{"settings-only profile ignored", "[a]\nregion = x\n[b]\naws_access_key_id = K\naws_secret_access_key = S\n",
			map[string]string{"K": "S"}, nil},
		{"same key twice, same secret", "[a]\naws_access_key_id = K\naws_secret_access_key = S\n[b]\naws_access_key_id = K\naws_secret_access_key = S\n",
			map[string]string{"K": "S"}, nil},
		{"empty", "", nil, []string{"no profile has both"}},
		{"half pairs", "[a]\naws_access_key_id = K\n[b]\naws_secret_access_key = S\n", nil,
			[]string{"[a] (line 1) has aws_access_key_id K but no aws_secret_access_key", "[b] (line 3) has aws_secret_access_key but no aws_access_key_id"}},
		{"two secrets", "[a]\naws_access_key_id = K\naws_secret_access_key = S\n[b]\naws_access_key_id = K\naws_secret_access_key = T\n", nil,
			[]string{"second, different secret"}},
		{"key before section", "aws_access_key_id = K\n", nil, []string{"line 1", "before any [profile]"}},
		{"not key = value", "[a]\nwJalrXUtnFEMI/K7MDENG\n", nil, []string{"line 2", "wJal..."}},
		{"unclosed section", "[a\n", nil, []string{"line 1", "lacks its ']'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := server.ParseCredentials(strings.NewReader(tt.file))
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), "K7MDENG", "secrets stay out of errors")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(path, []byte("[default]\naws_access_key_id = K\naws_secret_access_key = S\n"), 0o600))
	got, err := server.LoadCredentials(path)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"K": "S"}, got)

	_, err = server.LoadCredentials(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(path, []byte("[a]\n"), 0o600))
	_, err = server.LoadCredentials(path)
	assert.ErrorContains(t, err, path)
}
