let loaded = null;
/** Loads and initialises the policy library once (its SQL parser is WASM). */
export function loadPolicyLib() {
    if (!loaded) {
        const name = '@portcullis/policy';
        loaded = import(name).then(async (lib) => {
            await lib.initPolicyEngine();
            return lib;
        });
        loaded.catch(() => {
            loaded = null;
        });
    }
    return loaded;
}
//# sourceMappingURL=policy-lib.js.map