/* The presearch of RuleIndex (monitor/rules/index.py), compiled.
 *
 * candidates() answers what PythonPresearch.candidates (monitor/rules/presearch.py) does,
 * without the interpreter's overhead per key; the stem check ("does a word of the article
 * begin with this stem") uses a hash table of the words' first letters, built on first
 * need, instead of sorting the article's vocabulary. Both return the same sorted rule
 * numbers; tests/test_rules_presearch.py checks that they do.
 *
 * Borrowed references stay valid for the call: `words` is (or is copied into) a frozenset,
 * and each entry is held while it is read, since str subclasses may run Python code when
 * hashed or compared.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_TABLED_STEM 16

typedef struct {
    Py_ssize_t *items;
    Py_ssize_t len;
    Py_ssize_t cap;
} IdList;

typedef struct {
    Py_uhash_t hash;
    PyObject *word; /* borrowed from the article's word set, alive for the call */
} Slot;

typedef struct {
    Slot *slots; /* NULL until built */
    size_t mask;
} PrefixTable;

typedef struct {
    PyObject *words;
    PrefixTable tables[MAX_TABLED_STEM + 1]; /* by stem length */
} Prefixes;

static int
reserve(IdList *found, Py_ssize_t count)
{
    if (found->len + count <= found->cap) {
        return 0;
    }
    Py_ssize_t cap = found->cap ? found->cap : 64;
    while (cap < found->len + count) {
        cap *= 2;
    }
    Py_ssize_t *items = PyMem_Realloc(found->items, (size_t)cap * sizeof(Py_ssize_t));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    found->items = items;
    found->cap = cap;
    return 0;
}

static int
add_int_ids(IdList *found, PyObject *idents)
{
    Py_ssize_t count = PyTuple_GET_SIZE(idents);
    if (reserve(found, count) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t ident = PyLong_AsSsize_t(PyTuple_GET_ITEM(idents, i));
        if (ident == -1 && PyErr_Occurred()) {
            return -1;
        }
        found->items[found->len++] = ident;
    }
    return 0;
}

/* A packed entry being read: int32 numbers, read with memcpy (no alignment assumed). */
typedef struct {
    const char *data;
    Py_ssize_t left; /* numbers left */
} Packed;

static int32_t
packed_at(const Packed *packed, Py_ssize_t index)
{
    int32_t number;
    memcpy(&number, packed->data + index * (Py_ssize_t)sizeof(int32_t), sizeof(int32_t));
    return number;
}

static void
skip(Packed *packed, Py_ssize_t count)
{
    packed->data += count * (Py_ssize_t)sizeof(int32_t);
    packed->left -= count;
}

static int
read_count(Packed *packed, Py_ssize_t *count)
{
    int32_t number = packed->left < 1 ? -1 : packed_at(packed, 0);
    if (number < 0 || number > packed->left - 1) {
        PyErr_SetString(PyExc_ValueError, "malformed presearch entry");
        return -1;
    }
    *count = number;
    skip(packed, 1);
    return 0;
}

static int
read_ids(Packed *packed, IdList *found, int add)
{
    Py_ssize_t count;
    if (read_count(packed, &count) < 0) {
        return -1;
    }
    if (add) {
        if (reserve(found, count) < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            found->items[found->len++] = packed_at(packed, i);
        }
    }
    skip(packed, count);
    return 0;
}

static Py_uhash_t
prefix_hash(PyObject *text, Py_ssize_t length)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_uhash_t hash = (Py_uhash_t)14695981039346656037ULL;
    for (Py_ssize_t i = 0; i < length; i++) {
        hash ^= (Py_uhash_t)PyUnicode_READ(kind, data, i);
        hash *= (Py_uhash_t)1099511628211ULL;
    }
    return hash;
}

static int
build_table(Prefixes *prefixes, Py_ssize_t length)
{
    PrefixTable *table = &prefixes->tables[length];
    size_t size = 8;
    while (size < 2 * (size_t)PySet_GET_SIZE(prefixes->words)) {
        size *= 2;
    }
    table->slots = PyMem_Calloc(size, sizeof(Slot));
    if (table->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    table->mask = size - 1;
    PyObject *iterator = PyObject_GetIter(prefixes->words);
    if (iterator == NULL) {
        return -1;
    }
    PyObject *word;
    while ((word = PyIter_Next(iterator)) != NULL) {
        /* `words` is a frozenset: it holds each word for the whole call. */
        Py_DECREF(word);
        if (!PyUnicode_Check(word) || PyUnicode_GET_LENGTH(word) < length) {
            continue;
        }
        Py_uhash_t hash = prefix_hash(word, length);
        size_t slot = (size_t)hash & table->mask;
        while (table->slots[slot].word != NULL) {
            slot = (slot + 1) & table->mask;
        }
        table->slots[slot].hash = hash;
        table->slots[slot].word = word;
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

/* 1 if a word begins with `stem`, 0 if none does, -1 on error. */
static int
has_prefix(Prefixes *prefixes, PyObject *stem)
{
    if (!PyUnicode_Check(stem)) {
        PyErr_SetString(PyExc_TypeError, "stems must be str");
        return -1;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(stem);
    if (length == 0) {
        return PySet_GET_SIZE(prefixes->words) > 0;
    }
    if (length > MAX_TABLED_STEM) {
        PyObject *iterator = PyObject_GetIter(prefixes->words);
        if (iterator == NULL) {
            return -1;
        }
        PyObject *word;
        int found = 0;
        while (!found && (word = PyIter_Next(iterator)) != NULL) {
            if (PyUnicode_Check(word)) {
                found = (int)PyUnicode_Tailmatch(word, stem, 0, PY_SSIZE_T_MAX, -1);
            }
            Py_DECREF(word);
        }
        Py_DECREF(iterator);
        return PyErr_Occurred() ? -1 : found;
    }
    PrefixTable *table = &prefixes->tables[length];
    if (table->slots == NULL && build_table(prefixes, length) < 0) {
        return -1;
    }
    Py_uhash_t hash = prefix_hash(stem, length);
    for (size_t slot = (size_t)hash & table->mask; table->slots[slot].word != NULL;
         slot = (slot + 1) & table->mask) {
        if (table->slots[slot].hash == hash) {
            Py_ssize_t match =
                PyUnicode_Tailmatch(table->slots[slot].word, stem, 0, PY_SSIZE_T_MAX, -1);
            if (match != 0) {
                return (int)match;
            }
        }
    }
    return 0;
}

/* Adds the rules filed under one first key. `entry` is (packed, *second keys, *stems),
 * packed an int32 array: the rules filed alone (a count, then rule numbers), then for
 * each second key and then each stem, in tuple order, a count and its rules. */
static int
add_filed(PyObject *entry, PyObject *keys, Prefixes *prefixes, IdList *found)
{
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 1 ||
        !PyBytes_Check(PyTuple_GET_ITEM(entry, 0))) {
        PyErr_SetString(PyExc_TypeError, "a presearch entry must be (bytes, *str)");
        return -1;
    }
    PyObject *bytes = PyTuple_GET_ITEM(entry, 0);
    if (PyBytes_GET_SIZE(bytes) % (Py_ssize_t)sizeof(int32_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "malformed presearch entry");
        return -1;
    }
    Packed packed = {PyBytes_AS_STRING(bytes),
                     PyBytes_GET_SIZE(bytes) / (Py_ssize_t)sizeof(int32_t)};
    Py_ssize_t pairs;
    if (read_ids(&packed, found, 1) < 0 || read_count(&packed, &pairs) < 0) {
        return -1;
    }
    Py_ssize_t keyed = PyTuple_GET_SIZE(entry) - 1;
    if (pairs > keyed) {
        PyErr_SetString(PyExc_ValueError, "malformed presearch entry");
        return -1;
    }
    for (Py_ssize_t i = 1; i <= keyed; i++) {
        PyObject *key = PyTuple_GET_ITEM(entry, i);
        int held = i <= pairs ? PySet_Contains(keys, key) : has_prefix(prefixes, key);
        if (held < 0 || read_ids(&packed, found, held) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
compare_ids(const void *left, const void *right)
{
    Py_ssize_t a = *(const Py_ssize_t *)left, b = *(const Py_ssize_t *)right;
    return (a > b) - (a < b);
}

static PyObject *
sorted_unique(IdList *found)
{
    if (found->len > 1) {
        qsort(found->items, (size_t)found->len, sizeof(Py_ssize_t), compare_ids);
    }
    Py_ssize_t unique = 0;
    for (Py_ssize_t i = 0; i < found->len; i++) {
        if (unique == 0 || found->items[unique - 1] != found->items[i]) {
            found->items[unique++] = found->items[i];
        }
    }
    PyObject *result = PyList_New(unique);
    if (result == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < unique; i++) {
        PyObject *ident = PyLong_FromSsize_t(found->items[i]);
        if (ident == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, ident);
    }
    return result;
}

PyDoc_STRVAR(candidates_doc,
"candidates(firsts, keys, words, always) -> list[int]\n\n"
"The sorted numbers of `always` and of the rules filed in `firsts` under a key in `keys`:\n"
"those filed alone, those whose second key is in `keys`, those whose stem begins a word\n"
"of `words`.");

static PyObject *
candidates(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "candidates() takes 4 arguments");
        return NULL;
    }
    PyObject *firsts = args[0], *keys = args[1], *words = args[2], *always = args[3];
    if (!PyDict_Check(firsts) || !PyAnySet_Check(keys) || !PyAnySet_Check(words) ||
        !PyTuple_Check(always)) {
        PyErr_SetString(PyExc_TypeError, "expected a dict, two sets and a tuple");
        return NULL;
    }

    IdList found = {NULL, 0, 0};
    PyObject *result = NULL;
    if (PyFrozenSet_CheckExact(words)) {
        Py_INCREF(words);
    }
    else if ((words = PyFrozenSet_New(words)) == NULL) {
        return NULL;
    }
    Prefixes prefixes = {.words = words};
    if (add_int_ids(&found, always) < 0) {
        goto done;
    }
    /* Walk the smaller of the two, as set & set does. */
    if (PySet_GET_SIZE(keys) <= PyDict_GET_SIZE(firsts)) {
        PyObject *iterator = PyObject_GetIter(keys);
        if (iterator == NULL) {
            goto done;
        }
        PyObject *key;
        while ((key = PyIter_Next(iterator)) != NULL) {
            PyObject *entry = PyDict_GetItemWithError(firsts, key);
            Py_XINCREF(entry);
            int failed = entry == NULL ? PyErr_Occurred() != NULL
                                       : add_filed(entry, keys, &prefixes, &found) < 0;
            Py_XDECREF(entry);
            Py_DECREF(key);
            if (failed) {
                break;
            }
        }
        Py_DECREF(iterator);
    }
    else {
        Py_ssize_t position = 0;
        PyObject *key, *entry;
        while (PyDict_Next(firsts, &position, &key, &entry)) {
            Py_INCREF(key);
            Py_INCREF(entry);
            int held = PySet_Contains(keys, key);
            int failed = held < 0 || (held && add_filed(entry, keys, &prefixes, &found) < 0);
            Py_DECREF(entry);
            Py_DECREF(key);
            if (failed) {
                break;
            }
        }
    }
    if (!PyErr_Occurred()) {
        result = sorted_unique(&found);
    }

done:
    Py_DECREF(words);
    for (int length = 0; length <= MAX_TABLED_STEM; length++) {
        PyMem_Free(prefixes.tables[length].slots);
    }
    PyMem_Free(found.items);
    return result;
}

static PyMethodDef methods[] = {
    {"candidates", (PyCFunction)(void (*)(void))candidates, METH_FASTCALL, candidates_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor.rules._presearch",
    .m_doc = "The presearch of monitor.rules.index.RuleIndex, compiled.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__presearch(void)
{
    return PyModule_Create(&module);
}
