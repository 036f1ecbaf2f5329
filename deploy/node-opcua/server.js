// An independent, secured OPC-UA server for sentinelle's integration tests (node-opcua).
//
//   node server.js PORT PKI_DIR CERT_OUT   (user and password from NODE_OPCUA_USER / NODE_OPCUA_PASSWORD)
//
// Endpoints: Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss, in Sign and SignAndEncrypt;
// no None endpoint, no anonymous user.  node-opcua makes its own certificate in PKI_DIR/own and
// writes it (DER) to CERT_OUT for the client's trust folder.  Client certificates are accepted only
// when in PKI_DIR/trusted/certs (unknown ones go to PKI_DIR/rejected).  Variables
// ns=1;s=chiller1.chw_temp_c and ns=1;s=chiller1.power_kw change every 50 ms; ns=1;s=chiller1.valve_pct
// is an AnalogItemType variable with EURange 0 … 100 and EngineeringUnits percent (tests of sources/opcua_ranges.py).
// Prints "listening <url>" once it accepts connections; stops on SIGTERM.
"use strict";
const fs = require("fs");
const {
    OPCUAServer, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode, Variant, DataType, standardUnits,
} = require("node-opcua");

async function main() {
    const [port, pkiDir, certOut] = process.argv.slice(2);
    const user = process.env.NODE_OPCUA_USER;
    const password = process.env.NODE_OPCUA_PASSWORD;
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: pkiDir,
        automaticallyAcceptUnknownCertificate: false,
        disableFileWatchers: true,
    });
    await serverCertificateManager.initialize();
    const server = new OPCUAServer({
        port: Number(port),
        hostname: "127.0.0.1",
        resourcePath: "/UA/peer",
        serverCertificateManager,
        securityPolicies: [
            SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss,
        ],
        securityModes: [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: false,
        userManager: { isValidUser: (u, p) => u === user && p === password },
        serverInfo: { applicationUri: "urn:sentinelle:test:node-opcua" },
    });
    await server.initialize();
    const ns = server.engine.addressSpace.getOwnNamespace();
    const plant = ns.addObject({ organizedBy: server.engine.addressSpace.rootFolder.objects, browseName: "chiller1" });
    const variables = ["chiller1.chw_temp_c", "chiller1.power_kw"].map((name) =>
        ns.addVariable({
            componentOf: plant, nodeId: `s=${name}`, browseName: name, dataType: "Double", minimumSamplingInterval: 50,
        }));
    ns.addAnalogDataItem({
        componentOf: plant, nodeId: "s=chiller1.valve_pct", browseName: "chiller1.valve_pct", dataType: "Double",
        engineeringUnitsRange: { low: 0, high: 100 }, engineeringUnits: standardUnits.percent,
        value: new Variant({ dataType: DataType.Double, value: 42 }),
    });
    let step = 0;
    const timer = setInterval(() => {
        step += 1;
        variables.forEach((v, i) => v.setValueFromSource(new Variant({ dataType: DataType.Double, value: i * 100 + step })));
    }, 50);
    await server.start();
    fs.writeFileSync(certOut, server.getCertificate());
    console.log(`listening ${server.getEndpointUrl()}`);
    const stop = async () => { clearInterval(timer); await server.shutdown(0); process.exit(0); };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
