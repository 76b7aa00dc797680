# The identity comes from the worker's signed assertion, nothing else (README.md,
# "Trusting the worker at your origin"): before_action :require_edge_session.
module EdgeAssertion
  extend ActiveSupport::Concern

  private

  def require_edge_session
    payload, = JWT.decode(request.headers["X-Session-Assertion"].to_s, nil, true,
                          algorithms: ["ES256"], jwks: EdgeJwks, exp_leeway: 30,
                          iss: "edge-session", verify_iss: true,
                          aud: EdgeJwks::SITE, verify_aud: true, required_claims: %w[sub exp])
    @edge_user, @edge_claims, @edge_source = payload["sub"], payload["claims"] || {}, payload["src"]
  rescue JWT::DecodeError => e
    render json: { error: "invalid_assertion", detail: e.class.name.demodulize }, status: :unauthorized
  rescue EdgeJwks::Unavailable => e
    logger.error("edge-session JWKS: #{e.message}")
    render json: { error: "keys_unavailable" }, status: :service_unavailable
  end
end
