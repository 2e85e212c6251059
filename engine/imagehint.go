package engine

import "bytes"

// base64Magic is how the .npy magic and version 1.0 begin once
// base64-encoded: "\x93NUMPY" is exactly six bytes, so its base64 does not
// depend on what follows.
var base64Magic = []byte("k05VTVBZ")

// doubleEncodedHint explains Image.Bytes that are the base64 text of a .npy
// file rather than its bytes, which is what the AWS CLI v1 sends for
// --image '{"Bytes": "<base64>"}': it base64-encodes the blob again. It
// returns "" for any other bytes.
func doubleEncodedHint(b []byte) string {
	if !bytes.HasPrefix(b, base64Magic) {
		return ""
	}
	return "Image.Bytes holds the base64 text of a .npy file, not the file: it was base64-encoded twice " +
		"(the AWS CLI v1 encodes --image '{\"Bytes\": ...}' itself). Pass the file as " +
		"--image-bytes fileb://face.npy, or send the decoded bytes"
}
