#include "gateway/release/key_scope.hpp"

#include <pqxx/pqxx>

#include "gateway/db/guarded.hpp"

namespace custodian::release {

int keyDerivationNumber(anon::KeyDerivation derivation) noexcept { return static_cast<int>(derivation); }

std::optional<anon::KeyDerivation> keyDerivationOfNumber(int64_t number) noexcept {
    switch (number) {
    case 1: return anon::KeyDerivation::DatasetRecipient;
    case 2: return anon::KeyDerivation::DatasetPolicyRecipient;
    default: return std::nullopt;
    }
}

Result<anon::KeyDerivation> keyDerivationFor(pqxx::connection& conn, const std::string& recipient,
                                             const std::string& dataset, const std::string& policy) {
    try {
        pqxx::work tx(conn);
        pqxx::row r = tx.exec_params1(
            "SELECT min(key_derivation) FROM extracts WHERE recipient = $1 AND dataset = $2 AND policy = $3 "
            "AND status IN ('requested', 'completed', 'aborted')",
            recipient, dataset, policy);
        tx.commit();
        if (r[0].is_null()) return anon::kCurrentKeyDerivation;
        const auto number = r[0].as<int64_t>();
        auto derivation = keyDerivationOfNumber(number);
        if (!derivation) return internalError("extracts.key_derivation holds " + std::to_string(number));
        return *derivation;
    } catch (...) { return db::statusFromException(std::current_exception(), "reading the release's key derivation"); }
}

}  // namespace custodian::release
