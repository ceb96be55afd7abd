/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_corefile.c - the Corefile grammar, case by case.
 *
 * Each case is a Corefile text and either the blocks it must parse into
 * (written compactly: "keys=[k1,k2] dir=[tok@line ...]" per block, blocks
 * separated by " | ") or the error message it must fail with.  The parser
 * runs without a directive list (any name is a directive) except where a
 * case says otherwise; plugin-level checks live in test_conf.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corefile/corefile.h"

typedef struct {
    const char *name;
    const char *text;
    const char *want; /* serialised blocks, or NULL when it must fail */
    const char *err;  /* the error (exact), when want is NULL */
} cf_case_t;

static char tmpdir[256];


/* Blocks as "keys=[a,b] dir=[tok@line ...] ..." joined by " | ". */
static void
serialise(const cnd_corefile_t *cf, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t b = 0; b < cf->nblocks; b++) {
        const cnd_cf_block_t *blk = &cf->blocks[b];
        o += (size_t)snprintf(out + o, size - o, "%skeys=[", b ? " | " : "");
        for (size_t k = 0; k < blk->nkeys; k++) {
            o += (size_t)snprintf(out + o, size - o, "%s%s", k ? "," : "",
                                  blk->keys[k].text);
        }
        o += (size_t)snprintf(out + o, size - o, "]");
        for (size_t d = 0; d < blk->ndirs; d++) {
            const cnd_cf_dir_t *dir = &blk->dirs[d];
            o += (size_t)snprintf(out + o, size - o, " %s=[", dir->name);
            for (size_t t = 0; t < dir->ntokens; t++) {
                o +=
                    (size_t)snprintf(out + o, size - o, "%s%s@%d", t ? " " : "",
                                     dir->tokens[t].text, dir->tokens[t].line);
            }
            o += (size_t)snprintf(out + o, size - o, "]");
        }
    }
}


static bool
only_known(const char *name)
{
    return strcmp(name, "log") == 0 || strcmp(name, "whoami") == 0;
}


static void
run_case(const cf_case_t *c, cnd_cf_valid_fn valid)
{
    cnd_arena_t a;
    cnd_corefile_t cf;
    char err[1024] = "", got[4096];
    cnd_arena_init(&a, NULL, 0, 4096);
    int rc = cnd_corefile_parse(&a, "Corefile", c->text, strlen(c->text), valid,
                                &cf, err, sizeof(err));
    if (c->want != NULL) {
        if (rc != 0) {
            fail_msg("%s: unexpected error: %s", c->name, err);
        }
        serialise(&cf, got, sizeof(got));
        if (strcmp(got, c->want) != 0) {
            fail_msg("%s:\n  got  %s\n  want %s", c->name, got, c->want);
        }
    } else {
        if (rc == 0) {
            serialise(&cf, got, sizeof(got));
            fail_msg("%s: parsed, want error %s; got %s", c->name, c->err, got);
        }
        if (strcmp(err, c->err) != 0) {
            fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
        }
    }
    cnd_arena_deinit(&a);
}


static const cf_case_t good[] = {
    {"one block", ".:53 {\n    whoami\n}\n", "keys=[.:53] whoami=[whoami@2]",
     NULL},
    {"several keys", "example.org example.net:1053 {\n log\n}",
     "keys=[example.org,example.net:1053] log=[log@2]", NULL},
    {"comma continues keys", "a.org,\n  b.org {\n log\n}",
     "keys=[a.org,b.org] log=[log@3]", NULL},
    {"brace on next line", ".:53\n{\n whoami\n}",
     "keys=[.:53] whoami=[whoami@3]", NULL},
    {"no braces", ".:53\nwhoami\nlog stdout",
     "keys=[.:53] whoami=[whoami@2] log=[log@3 stdout@3]", NULL},
    {"only keys", "example.org", "keys=[example.org]", NULL},
    {"property block", ". {\n hosts {\n  fallthrough a.org\n  ttl 5\n }\n}",
     "keys=[.] hosts=[hosts@2 {@2 fallthrough@3 a.org@3 ttl@4 5@4 }@5]", NULL},
    {"nested blocks", ". {\n dir1 {\n  nested {\n   foo\n  }\n }\n dir2 x\n}",
     "keys=[.] dir1=[dir1@2 {@2 nested@3 {@3 foo@4 }@5 }@6] dir2=[dir2@7 "
     "x@7]",
     NULL},
    {"repeated directive concatenates", ". {\n log a.\n whoami\n log b.\n}",
     "keys=[.] log=[log@2 a.@2 log@4 b.@4] whoami=[whoami@3]", NULL},
    {"comments anywhere", ". { # open\n log#no space\n whoami # end\n}#x",
     "keys=[.] log=[log@2] whoami=[whoami@3]", NULL},
    {"comment only lines", "# head\n\n. {\n# inside\n log\n}\n# tail",
     "keys=[.] log=[log@5]", NULL},
    {"quoted token", ". {\n log \"a b\" c\n}", "keys=[.] log=[log@2 a b@2 c@2]",
     NULL},
    {"quote across lines keeps args together",
     ". {\n log \"a\nb\" c\n whoami\n}",
     "keys=[.] log=[log@2 a\nb@2 c@3] whoami=[whoami@4]", NULL},
    {"escaped quote", ". {\n log \"a\\\"b\" \"c\\nd\"\n}",
     "keys=[.] log=[log@2 a\"b@2 c\\nd@2]", NULL},
    {"hash inside quotes", ". {\n log \"a#b\"\n}", "keys=[.] log=[log@2 a#b@2]",
     NULL},
    {"empty quoted token", ". {\n log \"\"\n}", "keys=[.] log=[log@2 @2]",
     NULL},
    {"empty file", "", "", NULL},
    {"only a comment", "# nothing", "", NULL},
    {"CRLF", ". {\r\n log\r\n}\r\n", "keys=[.] log=[log@2]", NULL},
    {"byte order mark", "\xef\xbb\xbf. {\n log\n}", "keys=[.] log=[log@2]",
     NULL},
    {"tabs and blank lines", "\t.:53\t{\n\n\n\twhoami\n\n}\n",
     "keys=[.:53] whoami=[whoami@4]", NULL},
    {"two blocks", "a.org {\n whoami\n}\nb.org {\n log\n}",
     "keys=[a.org] whoami=[whoami@2] | keys=[b.org] log=[log@5]", NULL},
    {"empty block", "a.org {\n}\nb.org {\n log\n}",
     "keys=[a.org] | keys=[b.org] log=[log@4]", NULL},
    {"environment", ". {\n log {$CND_T_ONE} x{$CND_T_ONE}y {%CND_T_ONE%}\n}",
     "keys=[.] log=[log@2 one@2 xoney@2 one@2]", NULL},
    {"environment with spaces is one token", ". {\n log {$CND_T_TWO}\n}",
     "keys=[.] log=[log@2 a b@2]", NULL},
    {"unset environment is empty", ". {\n log {$CND_T_UNSET_X}\n}",
     "keys=[.] log=[log@2 @2]", NULL},
    {"environment in keys", "{$CND_T_ONE}.org {\n log\n}",
     "keys=[one.org] log=[log@2]", NULL},
    {"snippet", "(common) {\n errors\n log\n}\n. {\n import common\n whoami\n}",
     "keys=[.] errors=[errors@2] log=[log@3] whoami=[whoami@7]", NULL},
    {"snippet with a block",
     "(h) {\n hosts {\n  fallthrough\n }\n}\na. {\n import h\n}",
     "keys=[a.] hosts=[hosts@2 {@2 fallthrough@3 }@4]", NULL},
    {"snippet used twice",
     "(e) {\n errors\n}\na. {\n import e\n}\nb. {\n import e\n}",
     "keys=[a.] errors=[errors@2] | keys=[b.] errors=[errors@2]", NULL},
};

static const cf_case_t bad[] = {
    {"unclosed block", ". {\n whoami\n", NULL,
     "Corefile:2 - Syntax error: Unexpected token 'whoami', expecting '}'"},
    {"extra closing brace", "localhost\n  dir1 {\n  } }", NULL,
     "Corefile:3 - Error during parsing: Unexpected '}' because no matching "
     "opening brace"},
    {"unclosed block after a closed property block",
     ". {\n forward . 127.0.0.1 {\n  max_fails 3\n }\n", NULL,
     "Corefile:4 - Error during parsing: Unexpected EOF: the server block "
     "opened at line 1 is not closed (add a '}')"},
    {"stray closing brace after a block", ". {\n whoami\n}\n}\n", NULL,
     "Corefile:4 - Error during parsing: Unexpected '}' because no matching "
     "opening brace"},
    {"closing brace as a key", "a.org } {\n whoami\n}\n", NULL,
     "Corefile:1 - Error during parsing: Unexpected '}' because no matching "
     "opening brace"},
    {"unclosed property block", ". {\n hosts {\n  ttl 5\n", NULL,
     "Corefile:3 - Error during parsing: Unexpected EOF"},
    {"comma then brace", "a.org, {\n}", NULL,
     "Corefile:1 - Error during parsing: Expected another address but had "
     "'{' - check for extra comma"},
    {"trailing comma at the end", "a.org, b.org,", NULL,
     "Corefile:1 - Error during parsing: Unexpected EOF"},
    {"import without argument", ". {\n import\n}", NULL,
     "Corefile:2 - Error during parsing: Wrong argument count or unexpected "
     "line ending after 'import'"},
    {"import with two arguments", ". {\n import a b\n}", NULL,
     "Corefile:2 - Error during parsing: Import takes only one argument "
     "(glob pattern or file)"},
    {"import of a missing file", ". {\n import /nonexistent/cnd-none\n}", NULL,
     "Corefile:2 - Error during parsing: File to import not found: "
     "/nonexistent/cnd-none"},
    {"glob with two stars", ". {\n import /tmp/*/*.conf\n}", NULL,
     "Corefile:2 - Error during parsing: Glob pattern may only contain one "
     "wildcard (*), but has others: /tmp/*/*.conf"},
    {"snippet redeclared", "(a) {\n log\n}\n(a) {\n log\n}", NULL,
     "Corefile:4 - Error during parsing: redeclaration of previously "
     "declared snippet a"},
    {"snippet imports itself", "(a) {\n import a\n}\n. {\n import a\n}", NULL,
     "Corefile:3 - Error during parsing: maximum snippet import depth "
     "(1000) exceeded"},
    {"snippet cycle",
     "(a) {\n import b\n}\n(b) {\n import a\n}\n. {\n "
     "import a\n}",
     NULL,
     "Corefile:5 - Error during parsing: maximum snippet import depth "
     "(1000) exceeded"},
    {"snippet without braces", "(a)\nlog", NULL,
     "Corefile:2 - Syntax error: Unexpected token 'log', expecting '{'"},
    {"fuzz: import braces", "import }{$\"", NULL,
     "Corefile:1 - Error during parsing: File to import not found: }{$\""},
};


static void
test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        run_case(&good[i], NULL);
    }
}


static void
test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_case(&bad[i], NULL);
    }
}


static void
test_unknown_directive(void **state)
{
    (void)state;
    const cf_case_t c = {"unknown", ". {\n log\n bogus 1\n}", NULL,
                         "Corefile:3 - Error during parsing: Unknown "
                         "directive 'bogus'"};
    run_case(&c, only_known);
    const cf_case_t ok = {"known", ". {\n whoami\n}",
                          "keys=[.] whoami=[whoami@2]", NULL};
    run_case(&ok, only_known);
}


/* import of files and globs, relative to the importing file. */
static void
test_import_files(void **state)
{
    (void)state;
    char path[512], text[1024];
    snprintf(path, sizeof(path), "%s/one.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("log\nwhoami\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/two.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("errors\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/block.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("b.org {\n  log\n}\n", f);
    fclose(f);

    snprintf(text, sizeof(text), ". {\n import %s/one.conf\n}", tmpdir);
    cf_case_t c1 = {"import file", text,
                    "keys=[.] log=[log@1] whoami=[whoami@2]", NULL};
    run_case(&c1, NULL);

    snprintf(text, sizeof(text), ". {\n import %s/*.conf\n}", tmpdir);
    /* glob order: block.conf, one.conf, two.conf; block.conf's "b.org"
     * becomes a directive of ".": that is what Caddy does too. */
    cf_case_t c2 = {"import glob", text,
                    "keys=[.] b.org=[b.org@1 {@1 log@2 }@3] log=[log@1] "
                    "whoami=[whoami@2] errors=[errors@1]",
                    NULL};
    run_case(&c2, NULL);

    snprintf(text, sizeof(text), "import %s/block.conf\nc.org {\n whoami\n}",
             tmpdir);
    cf_case_t c3 = {"import at top level", text,
                    "keys=[b.org] log=[log@2] | keys=[c.org] whoami=[whoami@3]",
                    NULL};
    run_case(&c3, NULL);

    snprintf(text, sizeof(text), ". {\n import %s/nothing-*.conf\n log\n}",
             tmpdir);
    cf_case_t c4 = {"glob matching nothing is fine", text,
                    "keys=[.] log=[log@3]", NULL};
    run_case(&c4, NULL);

    /* A relative import is relative to the importing file: a Corefile
     * in tmpdir importing "one.conf". */
    char corefile[512];
    snprintf(corefile, sizeof(corefile), "%s/Corefile", tmpdir);
    cnd_arena_t a;
    cnd_corefile_t cf;
    char err[512], got[1024];
    cnd_arena_init(&a, NULL, 0, 4096);
    const char *rel = ". {\n import one.conf\n}";
    assert_int_equal(cnd_corefile_parse(&a, corefile, rel, strlen(rel), NULL,
                                        &cf, err, sizeof(err)),
                     0);
    serialise(&cf, got, sizeof(got));
    assert_string_equal(got, "keys=[.] log=[log@1] whoami=[whoami@2]");
    cnd_arena_deinit(&a);

    /* An error inside an imported file names that file and line. */
    snprintf(path, sizeof(path), "%s/broken.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("log\nbogus\n", f);
    fclose(f);
    snprintf(text, sizeof(text), ". {\n import %s/broken.conf\n}", tmpdir);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s/broken.conf:2 - Error during parsing: Unknown directive "
             "'bogus'",
             tmpdir);
    cf_case_t c5 = {"error in an imported file", text, NULL, want};
    run_case(&c5, only_known);
}


/* The dispenser's view of a directive's tokens. */
static void
test_dispenser(void **state)
{
    (void)state;
    const char *text = ". {\n hosts /etc/hosts a.org {\n  ttl 60\n  "
                       "fallthrough\n }\n hosts x\n}";
    cnd_arena_t a;
    cnd_corefile_t cf;
    char err[512];
    cnd_arena_init(&a, NULL, 0, 4096);
    assert_int_equal(cnd_corefile_parse(&a, "Corefile", text, strlen(text),
                                        NULL, &cf, err, sizeof(err)),
                     0);
    const cnd_cf_dir_t *dir = &cf.blocks[0].dirs[0];
    cnd_disp_t d;
    cnd_disp_init(&d, dir->tokens, dir->ntokens, err, sizeof(err));
    assert_true(cnd_disp_next(&d));
    assert_string_equal(cnd_disp_val(&d), "hosts");
    const char *args[4];
    assert_int_equal(cnd_disp_args(&d, args, 4), 2);
    assert_string_equal(args[0], "/etc/hosts");
    assert_string_equal(args[1], "a.org");
    assert_true(cnd_disp_next_block(&d));
    assert_string_equal(cnd_disp_val(&d), "ttl");
    assert_true(cnd_disp_next_arg(&d));
    assert_string_equal(cnd_disp_val(&d), "60");
    assert_false(cnd_disp_next_arg(&d));
    assert_true(cnd_disp_next_block(&d));
    assert_string_equal(cnd_disp_val(&d), "fallthrough");
    assert_int_equal(cnd_disp_line(&d), 4);
    assert_false(cnd_disp_next_block(&d));
    /* second use of the directive */
    assert_true(cnd_disp_next(&d));
    assert_string_equal(cnd_disp_val(&d), "hosts");
    assert_int_equal(cnd_disp_line(&d), 6);
    assert_true(cnd_disp_next_arg(&d));
    assert_false(cnd_disp_next_block(&d));
    assert_int_equal(cnd_disp_arg_err(&d), -1);
    assert_string_equal(err, "Corefile:6 - Error during parsing: Wrong "
                             "argument count or unexpected line ending "
                             "after 'x'");
    assert_false(cnd_disp_next(&d));
    cnd_arena_deinit(&a);
}


/* Every Corefile of the shared corpus parses or fails without crashing. */
static void
test_corpus(void **state)
{
    (void)state;
    const char *dir = "tests/corpus/corefile";
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null", dir);
    FILE *ls = popen(cmd, "r");
    if (ls == NULL) {
        return;
    }
    char name[256];
    int n = 0;
    while (fgets(name, sizeof(name), ls) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        char text[65536];
        size_t len = fread(text, 1, sizeof(text), f);
        fclose(f);
        cnd_arena_t a;
        cnd_corefile_t cf;
        char err[512];
        cnd_arena_init(&a, NULL, 0, 4096);
        int rc = cnd_corefile_parse(&a, path, text, len, NULL, &cf, err,
                                    sizeof(err));
        bool want_err =
            strstr(name, "caddy_parse_") != NULL &&
            (strstr(name, "comma_then") || strstr(name, "unclosed") ||
             strstr(name, "extra_close") || strstr(name, "trailing_comma") ||
             strstr(name, "fuzz_import"));
        if (strstr(name, "caddy_parse_") != NULL && want_err != (rc != 0)) {
            fail_msg("%s: rc %d (%s)", name, rc, rc ? err : "ok");
        }
        cnd_arena_deinit(&a);
        n++;
    }
    pclose(ls);
    assert_true(n > 0);
}


int
main(void)
{
    setenv("CND_T_ONE", "one", 1);
    setenv("CND_T_TWO", "a b", 1);
    unsetenv("CND_T_UNSET_X");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cnd-cf-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_unknown_directive),
        cmocka_unit_test(test_import_files),
        cmocka_unit_test(test_dispenser),
        cmocka_unit_test(test_corpus),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        rc = rc != 0 ? rc : 1;
    }
    return rc;
}
