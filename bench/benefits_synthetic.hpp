#pragma once
// A deterministic synthetic table of social-benefit records whose quasi-identifiers are nearly
// unique, as agency data is: birth_date (ages 18-95 on 2026-01-01, fewer old people), a 5-digit
// postcode (each of 7 municipalities owns a range of postcodes, popularity skewed within it), sex,
// municipality (7 values, skewed) and household_size (1-9, skewed). Together they are almost a
// key: about 99.9 % of 1,000,000 rows have a combination of their own. Beside them: an id, a name
// with commas, apostrophes and double quotes, a skewed benefit type (the sensitive attribute), an
// amount, a start date, and a free-text note (CSV quoting, embedded quotes, commas and newlines),
// with NULLs in amount, end_date and note.
//
// writeBenefitsCsv() prints the rows as CSV in PostgreSQL's COPY ... CSV dialect (empty unquoted
// field = NULL), header first. Same seed, same bytes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace custodian::bench {

inline constexpr const char* kBenefitsColumns =
    "id, full_name, birth_date, postcode, sex, municipality, household_size, benefit_type, monthly_amount, "
    "start_date, end_date, note";

inline constexpr const char* kBenefitsCreateTable =
    "CREATE TABLE bench.benefits (id bigint, full_name text, birth_date date, postcode text, sex text, "
    "municipality text, household_size integer, benefit_type text, monthly_amount numeric(8,2), start_date date, "
    "end_date date, note text)";

// k = 5 with 2 % suppression, as in issue 16; `algorithm` and `privacy` are replaced by the benches.
inline constexpr const char* kBenefitsPolicy = R"({
  "dataset": "benefits",
  "recipients": ["bench-partner"],
  "purposes": ["benchmark"],
  "columns": [
    {"name": "id", "type": "integer", "role": "identifier", "transform": {"name": "pseudonymize"}},
    {"name": "full_name", "type": "text", "role": "identifier", "transform": {"name": "drop"}},
    {"name": "birth_date", "type": "date", "role": "quasi_identifier",
     "hierarchy": {"builder": "dates", "levels": ["month", "quarter", "year", "decade"]}},
    {"name": "postcode", "type": "text", "role": "quasi_identifier", "hierarchy": {"builder": "prefix"}},
    {"name": "sex", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "groups", "levels": [{"*": ["F", "M"]}]}},
    {"name": "municipality", "type": "text", "role": "quasi_identifier",
     "hierarchy": {"builder": "groups", "levels": [
       {"North": ["Altstadt", "Bergheim", "Kirchberg-Nord"], "South": ["Neudorf", "Sankt Anna", "Talheim", "Wiesental"]}]}},
    {"name": "household_size", "type": "integer", "role": "quasi_identifier",
     "hierarchy": {"builder": "intervals", "widths": [3, 9], "origin": 1}},
    {"name": "benefit_type", "type": "text", "role": "sensitive"},
    {"name": "monthly_amount", "type": "decimal", "role": "insensitive", "transform": {"name": "round", "params": {"base": 10}}},
    {"name": "start_date", "type": "date", "role": "insensitive"},
    {"name": "end_date", "type": "date", "role": "insensitive"},
    {"name": "note", "type": "text", "role": "insensitive"}
  ],
  "privacy": {"k": 5, "suppression_limit": 0.02},
  "algorithm": {"name": "optimal"},
  "metric": "loss"
})";

namespace detail {

// Days since 1970-01-01 -> "YYYY-MM-DD" into out[32] (proleptic Gregorian; Howard Hinnant's civil_from_days).
inline void formatDate(int64_t days, char* out) {
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto doe = static_cast<unsigned>(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
    std::snprintf(out, 32, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
}

// Picks an index by cumulative weights.
template <size_t N> size_t pickWeighted(std::mt19937_64& rng, const double (&cumulative)[N]) {
    const double u = std::uniform_real_distribution<double>(0, cumulative[N - 1])(rng);
    for (size_t i = 0; i < N; ++i) {
        if (u < cumulative[i]) return i;
    }
    return N - 1;
}

}  // namespace detail

// Writes the header and `rows` rows to `out`.
inline void writeBenefitsCsv(std::FILE* out, uint64_t rows, uint64_t seed = 20261205) {
    static const char* kMunicipality[] = {"Altstadt",   "Bergheim", "Kirchberg-Nord", "Neudorf",
                                          "Sankt Anna", "Talheim",  "Wiesental"};
    static const double kMunicipalityCum[] = {0.38, 0.58, 0.72, 0.82, 0.90, 0.96, 1.00};
    static const int kPostcodes[] = {260, 170, 120, 90, 70, 50, 40};  // postcodes per municipality (800)
    static const double kHouseholdCum[] = {0.41, 0.74, 0.86, 0.95, 0.98, 0.992, 0.997, 0.999, 1.0};
    static const char* kBenefit[] = {"housing", "unemployment", "child",  "disability", "pension-supplement",
                                     "care",    "education",    "energy", "emergency",  "other"};
    static const double kBenefitCum[] = {0.30, 0.52, 0.68, 0.78, 0.86, 0.91, 0.95, 0.975, 0.99, 1.0};
    static const char* kFirst[] = {"Anna",        "Jo",   "Mehmet", "Sofia", "Lukas",
                                   "Marie-Luise", "Jean", "Zoë",    "Ali",   "Eva"};
    static const char* kLast[] = {"Müller", "O'Brien",  "Schmidt, Dr.", "Nguyen", "D'Angelo",
                                  "Weiß",   "Kowalski", "van der Berg", "Yılmaz", "Fischer"};
    static const char* kNote[] = {"called twice, no answer",
                                  "said \"will send documents\"",
                                  "moved; new address pending",
                                  "line one\nline two",
                                  "ok",
                                  "needs interpreter (Turkish)",
                                  "\"urgent\", see file",
                                  "back-payment, 3 months"};
    std::mt19937_64 rng(seed);
    // Age weights: flat to 64, then falling linearly to 0.15 at 95.
    double ageCum[78];
    double total = 0;
    for (int a = 18; a <= 95; ++a) {
        total += a < 65 ? 1.0 : 1.0 - 0.85 * (a - 64) / 31.0;
        ageCum[a - 18] = total;
    }
    // Postcode popularity within a municipality: weight 1/sqrt(rank+1) (Zipf-like).
    std::vector<std::vector<double>> postcodeCum(7);
    for (size_t m = 0; m < 7; ++m) {
        double s = 0;
        for (int j = 0; j < kPostcodes[m]; ++j) postcodeCum[m].push_back(s += 1.0 / std::sqrt(j + 1.0));
    }
    const int64_t reference = 20454;  // 2026-01-01
    std::uniform_real_distribution<double> unit(0, 1);
    std::fputs(
        "id,full_name,birth_date,postcode,sex,municipality,household_size,benefit_type,monthly_amount,start_date,"
        "end_date,note\n",
        out);
    std::string line;
    char birth[32], start[32], end[32];
    for (uint64_t id = 1; id <= rows; ++id) {
        const size_t age = detail::pickWeighted(rng, ageCum) + 18;
        // Born between (age+1) years and age years before the reference day.
        const auto dayInYear = static_cast<int64_t>(unit(rng) * 365.2425);
        detail::formatDate(reference - static_cast<int64_t>(static_cast<double>(age) * 365.2425) - dayInYear - 1,
                           birth);
        const size_t m = detail::pickWeighted(rng, kMunicipalityCum);
        const auto& pc = postcodeCum[m];
        const double u = unit(rng) * pc.back();
        const auto rank = static_cast<size_t>(std::lower_bound(pc.begin(), pc.end(), u) - pc.begin());
        const int postcode = 71000 + static_cast<int>(m) * 1200 + static_cast<int>(std::min(rank, pc.size() - 1)) * 3;
        const char* sex = unit(rng) < 0.51 ? "F" : "M";
        const size_t household = detail::pickWeighted(rng, kHouseholdCum) + 1;
        const char* benefit = kBenefit[detail::pickWeighted(rng, kBenefitCum)];
        const int64_t startDay = 16436 + static_cast<int64_t>(unit(rng) * 4000);  // 2015-01-01 + up to ~11 years
        detail::formatDate(startDay, start);
        const bool ended = unit(rng) < 0.35;
        detail::formatDate(startDay + 30 + static_cast<int64_t>(unit(rng) * 900), end);
        // Name: quoted when it holds a comma or a quote ("" doubles an embedded quote).
        std::string name = std::string(kFirst[rng() % 10]) + (rng() % 13 == 0 ? " \"JJ\" " : " ") + kLast[rng() % 10];
        auto csvField = [&](const std::string& v) {
            if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
            std::string q = "\"";
            for (char c : v) {
                if (c == '"') q += '"';
                q += c;
            }
            return q + "\"";
        };
        line = std::to_string(id);
        line += ',';
        line += csvField(name);
        line += ',';
        line += birth;
        line += ',';
        line += std::to_string(postcode);
        line += ',';
        line += sex;
        line += ',';
        line += kMunicipality[m];
        line += ',';
        line += std::to_string(household);
        line += ',';
        line += benefit;
        line += ',';
        if (unit(rng) >= 0.03) {  // amount NULL in 3 % of the rows
            char amount[32];
            std::snprintf(amount, sizeof amount, "%.2f", 120 + unit(rng) * 1800);
            line += amount;
        }
        line += ',';
        line += start;
        line += ',';
        if (ended) line += end;
        line += ',';
        if (unit(rng) >= 0.4) line += csvField(kNote[rng() % 8]);  // note NULL in 40 %
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), out);
    }
}

}  // namespace custodian::bench
