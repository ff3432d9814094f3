#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gateway/db/migrations.hpp"

using namespace custodian;
using namespace custodian::db;

namespace {

struct MigrationDir {
    std::string path;
    MigrationDir() {
        char tmpl[] = "/tmp/custodian-migrations-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~MigrationDir() { std::filesystem::remove_all(path); }
    void write(const std::string& name, const std::string& sql) const { std::ofstream(path + "/" + name) << sql; }
};

}  // namespace

TEST_CASE("migrations are loaded in version order, not directory order", "[migrations]") {
    MigrationDir dir;
    dir.write("0010_later.sql", "SELECT 10;");
    dir.write("0002_second.sql", "SELECT 2;");
    dir.write("0001_first.sql", "SELECT 1;");
    dir.write("README.md", "not a migration");
    auto loaded = loadMigrations(dir.path);
    REQUIRE(loaded.isOk());
    REQUIRE(loaded->size() == 3);
    CHECK((*loaded)[0].version == 1);
    CHECK((*loaded)[1].version == 2);
    CHECK((*loaded)[2].version == 10);
    CHECK((*loaded)[2].name == "0010_later.sql");
    CHECK((*loaded)[0].sql == "SELECT 1;");
}

TEST_CASE("a duplicate version or a misnamed .sql file is an error", "[migrations]") {
    {
        MigrationDir dir;
        dir.write("0001_a.sql", "SELECT 1;");
        dir.write("0001_b.sql", "SELECT 1;");
        auto loaded = loadMigrations(dir.path);
        REQUIRE_FALSE(loaded.isOk());
        CHECK(loaded.status().message().find("share version 1") != std::string::npos);
    }
    {
        MigrationDir dir;
        dir.write("1_short.sql", "SELECT 1;");
        CHECK(loadMigrations(dir.path).status().code() == StatusCode::InvalidArgument);
    }
    CHECK_FALSE(parseMigration("0000_zero.sql", "").isOk());
    CHECK_FALSE(parseMigration("0003_Upper.sql", "").isOk());
    CHECK(parseMigration("0003_lower_case_2.sql", "").isOk());
    CHECK(loadMigrations("/nonexistent/migrations").status().code() == StatusCode::NotFound);
}

TEST_CASE("the checksum identifies the migration text", "[migrations]") {
    auto a = parseMigration("0001_a.sql", "SELECT 1;");
    auto b = parseMigration("0001_a.sql", "SELECT 1; ");
    REQUIRE(a.isOk());
    REQUIRE(b.isOk());
    // SHA-256("SELECT 1;"), computed independently with Python's hashlib.
    CHECK(a->checksum == "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a");
    CHECK(a->checksum != b->checksum);
}

TEST_CASE("the repository's migrations load and start at 0001", "[migrations]") {
    auto loaded = loadMigrations(CUSTODIAN_SOURCE_DIR "/migrations");
    REQUIRE(loaded.isOk());
    REQUIRE_FALSE(loaded->empty());
    CHECK(loaded->front().version == 1);
}
