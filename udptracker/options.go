package udptracker

// BEP 41 options follow the 98 bytes of an announce request. Each starts
// with a one-byte type:
//
//	Type  Name          Layout
//	0x0   EndOfOptions  type only; parsing stops here
//	0x1   NOP           type only; padding
//	0x2   URLData       type, length (1 byte), that many bytes of the URL's
//	                    path and query; several URLData options are
//	                    concatenated in order
//	other (unknown)     type, length (1 byte), data: skipped
//
// Parsing also stops at the end of the packet. qBittorrent 5 (libtorrent 2)
// sends URLData for every udp:// announce URL with a path or query.
const (
	optionEndOfOptions byte = 0x0
	optionNOP          byte = 0x1
	optionURLData      byte = 0x2

	// maxOptionData is the most one option can carry (its length is a byte).
	maxOptionData = 255
)

// ParseOptions appends the URLData of the options in b to urlData and
// returns it. A malformed option (a length running past the packet) stops
// parsing with ErrOptions; urlData then holds the data of the options
// before it.
func ParseOptions(b []byte, urlData []byte) ([]byte, error) {
	for len(b) > 0 {
		switch b[0] {
		case optionEndOfOptions:
			return urlData, nil
		case optionNOP:
			b = b[1:]
			continue
		}
		if len(b) < 2 || len(b)-2 < int(b[1]) {
			return urlData, ErrOptions
		}
		data := b[2 : 2+int(b[1])]
		if b[0] == optionURLData {
			urlData = append(urlData, data...)
		}
		b = b[2+len(data):]
	}
	return urlData, nil
}

// AppendOptions appends urlData as URLData options of at most 255 bytes
// each, then EndOfOptions; with no urlData it appends nothing.
func AppendOptions(dst []byte, urlData []byte) []byte {
	if len(urlData) == 0 {
		return dst
	}
	for len(urlData) > 0 {
		n := min(len(urlData), maxOptionData)
		dst = append(dst, optionURLData, byte(n))
		dst = append(dst, urlData[:n]...)
		urlData = urlData[n:]
	}
	return append(dst, optionEndOfOptions)
}
