#pragma once
// Small JSON text helpers shared by the policy library: compact JSON and safe quoting of untrusted
// values inside error messages. The canonical bytes a content hash is computed over come from
// json/canonical.hpp (json::canonicalJson with json::Numbers::Decimal).

#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace custodian::policies {

// Compact JSON of a value as written by RapidJSON (member order kept).
std::string compactJson(const rapidjson::Value& value);

// The lower-case hex SHA-256 (libsodium crypto_hash_sha256) of `bytes`.
std::string sha256Hex(std::string_view bytes);

// Untrusted text made safe to print in a message: bytes outside printable ASCII become \xNN and
// anything past 80 characters is cut with "...".
std::string printableForMessage(std::string_view text);

// A value for a message: a string in double quotes (made printable), other values as compact JSON
// (shortened the same way).
std::string quotedForMessage(const rapidjson::Value& value);

}  // namespace custodian::policies
