/* tool.h: record helpers for scripts and demos: turn a labels<TAB>text TSV into xmc.v1.Product records for
 * `kcat -P -D ... -K ...`, and print the xmc.v1.LabeledProduct records of `kcat -C -f '%k<K>%s<D>'` as text. */
#ifndef XMCD_TOOL_H
#define XMCD_TOOL_H

/* Record and key delimiters used on both sides (multi-byte, absent from catalog text). */
#define XMCD_TOOL_REC "|~REC~|"
#define XMCD_TOOL_KEY "|~KEY~|"

/* Reads a TSV (labels<TAB>text) and writes one keyed Product per line to stdout (key = id prefix + line
 * number, title = text). Returns 0 or 1 (I/O error, message on stderr). */
int xmcd_tool_encode(const char *tsv_path, const char *id_prefix, int known_labels);
/* Reads kcat output from stdin and prints "key<TAB>model_version<TAB>label:score<TAB>..." per record;
 * undecodable values print "key<TAB>!undecodable". Returns 0 or 1. */
int xmcd_tool_decode(void);

#endif
