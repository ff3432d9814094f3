#pragma once
// Small JSON text helpers shared by the policy library: canonical serialization (the bytes the
// content hash is computed over) and safe quoting of untrusted values inside error messages.

#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace custodian::policies {

// Compact JSON of a value as written by RapidJSON (member order kept).
std::string compactJson(const rapidjson::Value& value);

// Canonical JSON: object members sorted by the bytes of their UTF-8 names, no whitespace, strings
// escaped as RapidJSON's Writer escapes them (", \, control characters; other characters as raw
// UTF-8), integers in decimal, other numbers in RapidJSON's shortest round-trip form ("1.0" stays
// a non-integer). Precondition: no object has two members with the same name.
std::string canonicalJson(const rapidjson::Value& value);

// The lower-case hex SHA-256 (libsodium crypto_hash_sha256) of `bytes`.
std::string sha256Hex(std::string_view bytes);

// Untrusted text made safe to print in a message: bytes outside printable ASCII become \xNN and
// anything past 80 characters is cut with "...".
std::string printableForMessage(std::string_view text);

// A value for a message: a string in double quotes (made printable), other values as compact JSON
// (shortened the same way).
std::string quotedForMessage(const rapidjson::Value& value);

}  // namespace custodian::policies
